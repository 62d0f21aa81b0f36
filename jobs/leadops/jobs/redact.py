"""`leadops redact`: PII redaction of stdin, line by line, so the rules can be checked by hand.

With --json each output line is {"text": <redacted>, "findings": [{"type", "start", "end"}]};
positions refer to the input line, and the matched text itself is never printed.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from leadops import cliutil, pii


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(
        prog="leadops redact",
        description="Write stdin to stdout with PII replaced by [REDACTED], line by line.",
    )
    parser.add_argument("--typed", action="store_true", help="write [REDACTED:EMAIL] etc.")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per line with the findings"
    )
    parser.add_argument(
        "--region",
        help=f"phone region for numbers without a country code (default: ${pii.REGION_ENV} or US)",
    )
    return parser


def run(source: TextIO, sink: TextIO, *, detector: pii.Detector, typed: bool, as_json: bool) -> int:
    """Redact `source` into `sink`; returns how many lines had PII."""
    lines_with_pii = 0
    for line in source:
        body = line[:-1] if line.endswith("\n") else line
        findings = detector.find(body)
        lines_with_pii += bool(findings)
        redacted = pii.replace(body, findings, typed=typed)
        if as_json:
            record = {"text": redacted, "findings": [f.to_dict() for f in findings]}
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            sink.write(redacted + ("\n" if line.endswith("\n") else ""))
        sink.flush()
    return lines_with_pii


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        detector = pii.Detector(region=args.region) if args.region else pii.default_detector()
    except ValueError as exc:
        raise cliutil.UsageError(str(exc)) from None
    run(sys.stdin, sys.stdout, detector=detector, typed=args.typed, as_json=args.json)
    return cliutil.EXIT_OK

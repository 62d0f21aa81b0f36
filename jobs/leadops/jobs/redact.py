"""`leadops redact`: PII redaction of stdin, line by line, so the rules can be checked by hand.

With --json each output line is {"text": <redacted>, "findings": [{"type", "start", "end"}]};
positions refer to the input line, and the matched text itself is never printed.
"""

from __future__ import annotations

import io
import json
import sys
from typing import TextIO

from leadops import cliutil, pii
from leadops.jobs.region_option import add_region_option, detector_for


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(
        prog="leadops redact",
        description="Write stdin to stdout with PII replaced by [REDACTED], line by line.",
    )
    parser.add_argument("--typed", action="store_true", help="write [REDACTED:EMAIL] etc.")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per line with the findings"
    )
    add_region_option(parser)
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
            sink.write(json.dumps(record) + "\n")  # ASCII escapes: valid JSON for any input
        else:
            sink.write(redacted + ("\n" if line.endswith("\n") else ""))
        sink.flush()
    return lines_with_pii


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    detector = detector_for(args.regions)
    for stream in (sys.stdin, sys.stdout):
        if isinstance(stream, io.TextIOWrapper):
            # Bytes that are not UTF-8 pass through unchanged instead of ending the run.
            stream.reconfigure(errors="surrogateescape")
    run(sys.stdin, sys.stdout, detector=detector, typed=args.typed, as_json=args.json)
    return cliutil.EXIT_OK

"""Runs inside the Presidio virtualenv (not LeadOps'): its pattern recognizers over the corpus.

Usage: .cache/bench-venvs/presidio/bin/python bench/presidio_worker.py CORPUS.jsonl
Prints one JSON object: {"version", "seconds", "predictions": {id: [[type, start, end], ...]}}.

AnalyzerEngine would load a spaCy model (a download, impossible offline), so the
predefined recognizers are called directly with nlp_artifacts=None, as
AnalyzerEngine does for pattern recognizers; same-type overlaps are removed with
Presidio's own EntityRecognizer.remove_duplicates and no score threshold is applied
(AnalyzerEngine's default threshold is 0). Imports only the standard library and Presidio.
"""

from __future__ import annotations

import json
import sys
import time
from importlib import metadata
from typing import Any

from presidio_analyzer import EntityRecognizer
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    UsSsnRecognizer,
)

TYPES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "US_SSN": "SSN",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP",
}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines]
    common: list[Any] = [
        EmailRecognizer(),
        CreditCardRecognizer(),
        UsSsnRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
    ]
    # One phone recognizer per deployment region, as LeadOps gets one default region.
    phones = {
        region: PhoneRecognizer(supported_regions=(region,))
        for region in sorted({r["region"] for r in records})
    }
    predictions: dict[str, list[list[Any]]] = {}
    started = time.perf_counter()
    for record in records:
        results: list[Any] = []
        for recognizer in [*common, phones[record["region"]]]:
            results += recognizer.analyze(
                text=record["text"], entities=recognizer.supported_entities, nlp_artifacts=None
            )
        results = EntityRecognizer.remove_duplicates(results)
        predictions[record["id"]] = [
            [TYPES[r.entity_type], r.start, r.end] for r in results if r.entity_type in TYPES
        ]
    seconds = time.perf_counter() - started
    json.dump(
        {
            "version": metadata.version("presidio-analyzer"),
            "seconds": seconds,
            "predictions": predictions,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()

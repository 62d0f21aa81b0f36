"""Benchmark the LeadOps PII detector against Microsoft Presidio's pattern recognizers.

Run: .venv/bin/python -m bench.pii_detector

Both run over the same labeled corpus (tests/data/pii_corpus.jsonl) with the
same scoring (bench/pii_scoring.py): per-type precision and recall, and
messages/second (detection only, one thread, after start-up). Presidio lives in
its own virtualenv under .cache/bench-venvs/presidio (created on first use with
pip) and runs as a subprocess (bench/presidio_worker.py) that prints JSON.
Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import pii_scoring
from bench.docsection import machine, write_section
from leadops.pii import Detector

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".cache" / "bench-venvs" / "presidio"
WORKER = Path(__file__).resolve().parent / "presidio_worker.py"
PRESIDIO = "presidio-analyzer"


def presidio_python() -> Path:
    """The Presidio virtualenv's interpreter, creating the virtualenv on first use."""
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {VENV} and installing {PRESIDIO} (first run only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import presidio_analyzer"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", PRESIDIO], check=True)
    return python


def run_presidio(records: list[pii_scoring.Record]) -> tuple[dict[str, Any], float, str]:
    result = subprocess.run(
        [str(presidio_python()), str(WORKER), str(pii_scoring.CORPUS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    output = json.loads(result.stdout)
    assert set(output["predictions"]) == {r.id for r in records}
    return output["predictions"], float(output["seconds"]), str(output["version"])


def run_leadops(records: list[pii_scoring.Record]) -> tuple[dict[str, Any], float]:
    detectors = {region: Detector(region=region) for region in {r.region for r in records}}
    for record in records[:50]:  # warm the phone metadata caches, as a running service has
        detectors[record.region].find(record.text)
    predictions: dict[str, Any] = {}
    started = time.perf_counter()
    for record in records:
        found = detectors[record.region].find(record.text)
        predictions[record.id] = [[f.type.value, f.start, f.end] for f in found]
    return predictions, time.perf_counter() - started


def score(records: list[pii_scoring.Record], predictions: dict[str, Any]) -> pii_scoring.Scores:
    return pii_scoring.score(
        records, lambda record: [pii_scoring.Span(*p) for p in predictions[record.id]]
    )


def main() -> None:
    records = pii_scoring.load()
    ours, our_seconds = run_leadops(records)
    theirs, their_seconds, version = run_presidio(records)
    mine, presidio = score(records, ours), score(records, theirs)

    rows = []
    for kind in pii_scoring.TYPES:
        a, b = mine.by_type[kind], presidio.by_type[kind]
        rows.append(
            f"| {kind} | {a.gold} | {a.precision:.3f} | {a.recall:.3f} "
            f"| {b.precision:.3f} | {b.recall:.3f} |"
        )
    rows.append(
        f"| **all** | {sum(s.gold for s in mine.by_type.values())} | {mine.precision:.3f} "
        f"| {mine.recall:.3f} | {presidio.precision:.3f} | {presidio.recall:.3f} |"
    )
    ours_rate, their_rate = len(records) / our_seconds, len(records) / their_seconds
    table = "\n".join(rows)
    body = f"""
## PII detector vs Presidio (`bench/pii_detector.py`)

Machine: {machine()}.
Command: `.venv/bin/python -m bench.pii_detector`. Corpus: `tests/data/pii_corpus.jsonl`,
{len(records)} messages (Faker in 10 locales plus hand-written hard cases; regenerate with
`.venv/bin/python -m bench.make_pii_corpus`). Baseline: {PRESIDIO} {version}, its
predefined pattern recognizers (Email, Phone, CreditCard, UsSsn, Iban, Ip) called directly
with `nlp_artifacts=None` (AnalyzerEngine needs a spaCy model download), in its own virtualenv,
one PhoneRecognizer per record's region (as LeadOps uses one default region), no score
threshold (AnalyzerEngine's default). A gold span counts as found when a prediction of the
same type overlaps it; a prediction is correct when it overlaps a gold span of its type.

| type | gold spans | LeadOps precision | LeadOps recall | Presidio precision | Presidio recall |
|---|---|---|---|---|---|
{table}

| detector | messages/s (one thread, detection only) |
|---|---|
| LeadOps `leadops.pii` | {ours_rate:,.0f} |
| Presidio pattern recognizers | {their_rate:,.0f} |

LeadOps is {ours_rate / their_rate:.1f}x Presidio's throughput on this corpus. Read the quality
figures with care: the corpus (its hard cases above all) was written while LeadOps' rules were
tuned, so LeadOps is measured in-sample and Presidio is not. The corpus is
PII-dense (about two thirds of its messages hold PII, against ~5 % in real chat memory), so
both rates are far below what a mostly clean stream gets; the backfill benchmark measures that.
Bar enforced by `tests/unit/test_pii_corpus.py`: recall >= 0.99 for emails, cards, SSNs and
IBANs, >= 0.97 for phones, precision >= 0.98 overall.
"""
    write_section("pii_detector", body)
    print(body)


if __name__ == "__main__":
    main()

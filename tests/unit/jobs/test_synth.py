"""`leadops synth`: deterministic, realistic, both formats, PII only where a lead carries it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from leadops.contract.lead import Lead
from leadops.contract.rows import BASE_COLUMNS
from leadops.jobs import synth


def test_same_seed_same_leads_and_drift_moves_the_mix() -> None:
    a = synth.generate(300, seed=5)
    b = synth.generate(300, seed=5)
    assert [d.lead for d in a] == [d.lead for d in b]
    assert [d.probability for d in a] != [d.probability for d in synth.generate(300, seed=6)]
    calm = synth.generate(3000, seed=1)
    drifted = synth.generate(3000, seed=1, drift=1.0)

    def cold(drawn: list[synth.Drawn]) -> float:
        return sum(d.lead.source == "cold_call" for d in drawn) / len(drawn)

    assert cold(drifted) > 2 * cold(calm)
    times = [d.lead.received_at for d in calm]
    assert times == sorted(times)


def test_leads_look_real() -> None:
    drawn = synth.generate(2000, seed=3)
    regions = {d.lead.phone.split(" ")[0] for d in drawn if d.lead.phone.startswith("+")}
    assert len(regions) >= 8  # international calling codes
    assert sum("@" in d.lead.email for d in drawn) > 1500
    assert len({d.lead.tenant for d in drawn}) == 4
    assert any(d.lead.attributes.get("industry") == "Select" for d in drawn)
    assert any("quote" in d.lead.details for d in drawn)
    assert 0.15 < sum(d.converted for d in drawn) / len(drawn) < 0.6
    assert 0.7 < synth.achievable_auc(drawn) < 0.95


def test_csv_is_the_outcomes_format_with_contact_data_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, truth = tmp_path / "o.csv", tmp_path / "t.json"
    assert (
        synth.main(["--n", "800", "--seed", "2", "--output", str(out), "--truth", str(truth)]) == 0
    )
    err = capsys.readouterr().err
    facts = json.loads(truth.read_text())
    assert f"achievable AUC {facts['achievable_auc']}" in err
    rows = list(csv.DictReader(out.open()))
    header = list(rows[0])
    assert header[0] == "lead_id"
    assert header[1 : 1 + len(BASE_COLUMNS)] == list(BASE_COLUMNS)
    assert header[-1] == "converted"
    assert len(rows) == 800
    drawn = synth.generate(800, seed=2)
    text = out.read_text()
    for d in drawn:
        if d.lead.phone.startswith("+"):
            assert d.lead.phone not in text
        if d.lead.email:
            assert d.lead.email not in text
    assert "[REDACTED" in text
    assert [int(r["converted"]) for r in rows] == [d.converted for d in drawn]


def test_jsonl_lines_are_leads_plus_converted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "leads.jsonl"
    assert synth.main(["--n", "50", "--format", "jsonl", "--output", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 50
    for line in lines:
        record = json.loads(line)
        assert record.pop("converted") in (0, 1)
        Lead.model_validate(record)


@pytest.mark.parametrize("argv", [["--n", "0"], ["--drift", "-1"]])
def test_bad_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert synth.main(argv) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_unknown_format_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        synth.main(["--format", "xml"])
    assert info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1

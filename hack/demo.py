"""`make demo`: the LeadOps lifecycle on this machine, as a readable timeline.

So far: synthetic leads -> signed model artifact -> `leadops inspect`, the data-quality gate
refusing bad data, a tampered artifact refused, and the drift score on fresh and drifted leads.
Later steps (scorer, operator) append to STEPS. Everything runs the real `leadops` CLI.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "demo"
START = time.monotonic()


def say(message: str) -> None:
    print(f"[+{time.monotonic() - START:6.1f}s] {message}", flush=True)


def leadops(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI, echoing the command as a user would type it."""
    shown = " ".join(shlex.quote(a.replace(str(ROOT) + "/", "")) for a in args)
    print(f"          $ leadops {shown}", flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "leadops.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and done.returncode != 0:
        raise SystemExit(
            f"demo: leadops {args[0]} failed (exit {done.returncode}): {done.stderr.strip()}"
        )
    return done


def indent(text: str, prefix: str = "          ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


def step_synth() -> None:
    say("Generate 5,000 realistic synthetic leads with known outcomes (the scorer's export format)")
    done = leadops(
        "synth",
        "--n",
        "5000",
        "--seed",
        "7",
        "--output",
        str(OUT / "outcomes.csv"),
        "--truth",
        str(OUT / "truth.json"),
    )
    print(indent(done.stderr))
    leadops(
        "synth",
        "--n",
        "300",
        "--seed",
        "8",
        "--format",
        "jsonl",
        "--output",
        str(OUT / "leads.jsonl"),
    )
    say(
        "Also wrote 300 fresh leads as JSON lines for the scorer: "
        f"{OUT.relative_to(ROOT)}/leads.jsonl"
    )


def step_train() -> None:
    key = OUT / "signing.key"
    key.write_text(secrets.token_urlsafe(32))
    key.chmod(0o600)
    say("Train a signed model (HMAC-SHA256 key from LEADOPS_SIGNING_KEY_FILE)")
    done = leadops(
        "train",
        "--input",
        str(OUT / "outcomes.csv"),
        "--output",
        str(OUT / "model.json"),
        "--segment",
        "tenant",
        env={"LEADOPS_SIGNING_KEY_FILE": str(key)},
    )
    summary = json.loads(done.stdout)
    # The ceiling on the same hold-out: AUC of the generator's true probabilities there.
    from leadops.contract.metrics import auc  # noqa: PLC0415

    truth = json.loads((OUT / "truth.json").read_text())["probabilities"]
    labels = [
        int(line.rsplit(",", 1)[1]) for line in (OUT / "outcomes.csv").read_text().splitlines()[1:]
    ]
    n_test = summary["n_test"]
    ceiling = auc(labels[-n_test:], truth[-n_test:])
    low, high = summary["auc_ci95"]
    say(
        f"Trained version {summary['version']}: AUC {summary['auc']:.3f} "
        f"(95 % CI {low:.3f}-{high:.3f}) on the newest {n_test} leads, where the generator's "
        f"true probabilities reach {ceiling:.3f}; {summary['trees']} trees, "
        f"{summary['features']} features, {summary['seconds']['total']:.1f} s"
    )
    excluded = ", ".join(f"{k} ({v.split(':')[0]})" for k, v in summary["excluded"].items())
    say(f"Columns excluded automatically: {excluded}")


def step_inspect() -> None:
    say("Inspect the artifact, verifying digest and signature")
    done = leadops(
        "inspect",
        str(OUT / "model.json"),
        env={"LEADOPS_VERIFY_KEY_FILE": str(OUT / "signing.key")},
    )
    print(indent(done.stdout))


def step_gate() -> None:
    say("Data-quality gate: too few rows is refused, nothing is written, the old model stays")
    lines = (OUT / "outcomes.csv").read_text().splitlines()[:61]
    (OUT / "tiny.csv").write_text("\n".join(lines) + "\n")
    before = (OUT / "model.json").read_bytes()
    done = leadops(
        "train", "--input", str(OUT / "tiny.csv"), "--output", str(OUT / "model.json"), check=False
    )
    print(indent(done.stderr))
    unchanged = (OUT / "model.json").read_bytes() == before
    say(f"exit code {done.returncode}; model.json unchanged: {unchanged}")


def step_tamper() -> None:
    say("A tampered artifact (AUC edited by hand) is refused")
    document = json.loads((OUT / "model.json").read_text())
    document["metrics"]["auc"] = 0.99
    (OUT / "tampered.json").write_text(json.dumps(document))
    done = leadops("inspect", str(OUT / "tampered.json"), check=False)
    print(indent(done.stderr))
    say(f"exit code {done.returncode}")


def step_drift() -> None:
    say("Drift score (what the scorer exports as lead_model_drift_score; alert above 3.0)")
    from leadops.contract.artifact import load_artifact  # noqa: PLC0415
    from leadops.contract.drift import drift_report  # noqa: PLC0415
    from leadops.contract.featurize import matrix  # noqa: PLC0415
    from leadops.contract.rows import lead_to_row  # noqa: PLC0415
    from leadops.jobs import synth  # noqa: PLC0415
    from leadops.pii import redact  # noqa: PLC0415

    artifact = load_artifact(OUT / "model.json")
    for drift in (0.0, 0.5, 1.0):
        drawn = synth.generate(1000, seed=99, drift=drift)
        live = matrix(artifact.features, [lead_to_row(d.lead, redact=redact) for d in drawn])
        report = drift_report(artifact.feature_stats, live)
        top = ", ".join(f"{f.name} {f.shift:.1f}" for f in report.features[:2])
        say(
            f"  1,000 leads at synth --drift {drift}: score {report.score:.2f}, "
            f"max PSI {report.psi_max:.2f} (most shifted: {top})"
        )


STEPS: list[Callable[[], None]] = [
    step_synth,
    step_train,
    step_inspect,
    step_gate,
    step_tamper,
    step_drift,
]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    say(f"LeadOps demo: working in {OUT.relative_to(ROOT)}/")
    for step in STEPS:
        step()
    say("Demo finished")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

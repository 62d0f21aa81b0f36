"""`make demo` (`python -m hack.demo`): the LeadOps lifecycle here, as a readable timeline.

Synthetic leads -> signed model artifact -> `leadops inspect`, the data-quality gate
refusing bad data, a tampered artifact refused, the drift score on fresh and drifted leads;
then the scorer: serve the model with Redis, score leads and record outcomes over HTTP,
retrain from its outcomes export, reload with min_auc, refuse a bad and a tampered model,
and roll back by restoring the previous file.
Then the operator (hack/demo_operator.py): a LeadModel on the real local control plane with
kwok nodes. Finally, when the node's programs and the images are built (`make node images`,
as root), the same lifecycle on a real node through those images (hack/demo_real_node.py).
Everything runs the real `leadops` CLI.
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
from typing import Any

from tests.fixtures.redis_server import RedisServer
from tests.fixtures.scorer import ScorerServer

from leadops.jobs.synth import TENANTS

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
    from leadops.contract.quality import auc  # noqa: PLC0415

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


# --- the scorer: serve, score, record outcomes, retrain from its export, gated reloads ---------

API_KEY = "demo-" + secrets.token_hex(12)
# One ingest key per synthetic tenant: a /v1 caller's tenant is its key's (docs/security.md).
INGEST_KEYS = {tenant: f"ingest-{tenant}-{secrets.token_hex(12)}" for tenant in TENANTS}


class Scorer:
    """A real redis-server and `leadops serve` on free loopback ports, for the steps below:
    the test harness's own (tests/fixtures), so the demo starts them exactly as the tests do."""

    def __init__(self) -> None:
        self.redis: RedisServer | None = None
        self.server: ScorerServer | None = None
        self.serving = OUT / "serving" / "model.json"

    def start(self) -> None:
        redis_dir = OUT / "redis"
        redis_dir.mkdir(exist_ok=True)
        self.redis = RedisServer(redis_dir)
        self.redis.start()
        # The key salt: chat memory keys are named by a keyed hash of the chat_id (no PII).
        salt = OUT / "key-salt"
        salt.write_text(secrets.token_hex(32))
        env = {
            "LEADOPS_KEY_SALT_FILE": str(salt),
            "LEADOPS_API_KEYS": API_KEY,
            "LEADOPS_INGEST_KEYS": ",".join(f"{t}={k}" for t, k in INGEST_KEYS.items()),
            "REDIS_URL": self.redis.url,
            "LEADOPS_VERIFY_KEY_FILE": str(OUT / "signing.key"),
            "LEADOPS_DRIFT_MIN_SAMPLES": "100",
        }
        log = OUT / "scorer.log"
        try:
            self.server = ScorerServer(
                model=self.serving, env=env, log_path=log, start_timeout=60.0
            )
        except (RuntimeError, TimeoutError):
            raise SystemExit(f"demo: the scorer did not start; see {log}") from None
        print(
            f"          $ leadops serve --model {self.serving.relative_to(ROOT)} "
            f"--port {self.server.port}   (REDIS_URL, LEADOPS_*KEY*_FILE set)"
        )

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("the scorer is not started")
        return self.server.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None


SCORER = Scorer()


def _ops(method: str, path: str, **params: float) -> dict[str, Any]:
    import httpx  # noqa: PLC0415

    answer = httpx.request(
        method, f"{SCORER.url}{path}", params=params, headers={"x-api-key": API_KEY}, timeout=120
    )
    body: dict[str, Any] = answer.json()
    return body


def _status_line() -> str:
    s = _ops("GET", "/ops/model-status")
    drift = "n/a" if s["drift_score"] is None else f"{s['drift_score']:.2f}"
    return (
        f"serving version {s['version']}, AUC {s['auc']:.3f}, drift {drift}, health {s['health']}"
    )


def _reload(min_auc: float) -> None:
    print(
        f'          $ curl -X POST "$SCORER/ops/reload-model?min_auc={min_auc}" -H "x-api-key: ..."'
    )
    print(indent(json.dumps(_ops("POST", "/ops/reload-model", min_auc=min_auc))))


def step_serve() -> None:
    say("Start the scorer on the signed model, with a real redis-server behind it")
    SCORER.serving.parent.mkdir(exist_ok=True)
    (SCORER.serving.parent / "model.json.backup").write_bytes((OUT / "model.json").read_bytes())
    SCORER.serving.write_bytes((OUT / "model.json").read_bytes())
    SCORER.start()
    say(_status_line())


def step_score() -> None:
    import httpx  # noqa: PLC0415

    leadops(
        "synth",
        "--n",
        "2000",
        "--seed",
        "21",
        "--format",
        "jsonl",
        "--output",
        str(OUT / "live.jsonl"),
    )
    say("Score 1,200 new leads over HTTP, then record each one's outcome (POST /v1/outcome)")
    lines = (OUT / "live.jsonl").read_text().splitlines()
    started = time.monotonic()
    scored: list[tuple[str, int, float, str]] = []
    with httpx.Client(base_url=SCORER.url, timeout=30) as http:
        for line in lines:
            record = json.loads(line)
            converted = int(record.pop("converted"))
            key = INGEST_KEYS[record["tenant"]]
            body = http.post("/v1/lead", json=record, headers={"x-api-key": key}).json()
            scored.append((body["lead_id"], converted, body["score"], key))
        elapsed = time.monotonic() - started
        for lead_id, converted, _, key in scored:
            outcome = {"lead_id": lead_id, "converted": bool(converted)}
            http.post("/v1/outcome", json=outcome, headers={"x-api-key": key})
    from leadops.contract.quality import auc  # noqa: PLC0415

    live_auc = auc([c for _, c, _, _ in scored], [s for _, _, s, _ in scored])
    say(
        f"  {len(scored)} leads scored in {elapsed:.1f} s (one client, one connection); "
        f"AUC of the served scores on these live outcomes: {live_auc:.3f}"
    )
    say("  " + _status_line())


def step_retrain() -> None:
    say("Retrain from the scorer's own export (GET /ops/export/outcomes.csv, API key from env)")
    url = f"{SCORER.url}/ops/export/outcomes.csv"
    done = leadops(
        "train",
        "--input",
        url,
        "--output",
        str(OUT / "retrained.json"),
        "--min-samples",
        "500",
        env={"LEADOPS_API_KEY": API_KEY, "LEADOPS_SIGNING_KEY_FILE": str(OUT / "signing.key")},
    )
    summary = json.loads(done.stdout)
    say(
        f"  retrained version {summary['version']} on {summary['n_train']} exported leads: "
        f"AUC {summary['auc']:.3f}"
    )
    say("Deploy it with the AUC gate the guide recommends (min_auc=0.65)")
    SCORER.serving.write_bytes((OUT / "retrained.json").read_bytes())
    _reload(0.65)
    say("  " + _status_line())


def step_reject() -> None:
    say("A bad model: trained on shuffled labels (AUC ~0.5); the gate refuses it, old one serves")
    import random  # noqa: PLC0415

    lines = (OUT / "outcomes.csv").read_text().splitlines()
    labels = [line.rsplit(",", 1)[1] for line in lines[1:]]
    random.Random(5).shuffle(labels)  # noqa: S311 -- a demo's shuffle, not a secret
    shuffled = [lines[0]] + [
        line.rsplit(",", 1)[0] + "," + label for line, label in zip(lines[1:], labels, strict=True)
    ]
    (OUT / "shuffled.csv").write_text("\n".join(shuffled) + "\n")
    # Versions are unix seconds: start after the retrained model's second so they differ.
    retrained = json.loads((OUT / "retrained.json").read_text())["version"]
    while time.time() < retrained + 1:
        time.sleep(0.05)
    done = leadops(
        "train",
        "--input",
        str(OUT / "shuffled.csv"),
        "--output",
        str(OUT / "bad.json"),
        env={"LEADOPS_SIGNING_KEY_FILE": str(OUT / "signing.key")},
        check=False,
    )
    if done.returncode != 0:
        say(f"  the trainer itself refused it: {done.stderr.strip()}")
        return
    say(f"  trained the bad model: AUC {json.loads(done.stdout)['auc']:.3f}")
    (SCORER.serving.parent / "model.json.good").write_bytes(SCORER.serving.read_bytes())
    SCORER.serving.write_bytes((OUT / "bad.json").read_bytes())
    _reload(0.70)
    say("  " + _status_line())
    say("A tampered file (AUC edited by hand) is refused too: digest mismatch")
    SCORER.serving.write_bytes((OUT / "tampered.json").read_bytes())
    _reload(0.70)
    SCORER.serving.write_bytes((SCORER.serving.parent / "model.json.good").read_bytes())


def step_rollback() -> None:
    say("Emergency rollback as in the guide: restore the previous file, hot-reload, verify")
    print("          $ cp model.json.backup model.json")
    SCORER.serving.write_bytes((SCORER.serving.parent / "model.json.backup").read_bytes())
    _reload(0.70)
    say("  " + _status_line())
    import httpx  # noqa: PLC0415

    metrics = httpx.get(f"{SCORER.url}/metrics", timeout=10).text
    shown = [
        line
        for line in metrics.splitlines()
        if line.startswith(("lead_model_", "leadops_model_reloads_total"))
    ]
    print(indent("\n".join(shown)))


def step_operator() -> None:
    say("The operator: the same models on a real local Kubernetes control plane")
    from hack import demo_operator  # noqa: PLC0415 -- needs the cluster only from here on

    demo_operator.run(
        out=OUT,
        say=say,
        good=OUT / "model.json",
        newer=OUT / "retrained.json",
        bad=OUT / "bad.json",
    )


def step_real_node() -> None:
    from hack import demo_real_node  # noqa: PLC0415 -- needs the node only from here on

    why = demo_real_node.why_not(OUT)
    if why:
        say(f"Real node skipped ({why}): the operator stage above ran on kwok nodes")
        return
    say("The same lifecycle on a real node: containerd + kubelet running the images built here")
    demo_real_node.run(out=OUT, say=say)


STEPS: list[Callable[[], None]] = [
    step_synth,
    step_train,
    step_inspect,
    step_gate,
    step_tamper,
    step_drift,
    step_serve,
    step_score,
    step_retrain,
    step_reject,
    step_rollback,
    step_operator,
    step_real_node,
]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    say(f"LeadOps demo: working in {OUT.relative_to(ROOT)}/")
    try:
        for step in STEPS:
            step()
    finally:
        SCORER.stop()
    say("Demo finished")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

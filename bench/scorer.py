"""Benchmark: POST /v1/lead throughput and p50/p99 with a 300-tree model, against
(a) a bare FastAPI endpoint parsing the same body and returning a constant (bench.bare_app), and
(b) MLServer 1.7.1 + mlserver-xgboost serving the same xgboost model (predict_proba),
plus the model time alone: the compiled tree path (ONNX Runtime) vs xgboost's single-row path.

Run: `.venv/bin/python -m bench.scorer [--duration 10] [--rounds 3] [--skip-mlserver]`.
Needs `wrk` (Debian package `wrk`) as the load generator: a separate process on loopback,
bounded by --duration and --connections. MLServer lives in its own virtualenv under
.cache/bench-venvs/mlserver (it pins fastapi < 0.116), created on first use.
Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx
import numpy as np
import redis
import xgboost
from prometheus_client.parser import text_string_to_metric_families
from tests.fixtures.artifacts import build_artifact, synthetic_lead
from tests.fixtures.ports import free_port
from tests.fixtures.processes import terminate
from tests.fixtures.redis_server import RedisServer

from bench.docsection import machine, write_section
from leadops import pii
from leadops.contract import artifact, featurize
from leadops.contract.lead import Lead
from leadops.contract.rows import lead_to_row
from leadops.scorer import store, trees, writer

if TYPE_CHECKING:
    from bench import scorer_profile

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "bench-scorer"
MLSERVER_VENV = ROOT / ".cache" / "bench-venvs" / "mlserver"
MLSERVER_PINS = ["mlserver==1.7.1", "mlserver-xgboost==1.7.1", f"xgboost=={xgboost.__version__}"]
DURABILITY_NOTES = """Why bestEffort was slower than acknowledged under wrk (issue #24;
2026-12-04: 628 vs 1115 req/s, +22 % CPU per request): the suspect was the writer's 5 ms linger
making small batches. It was not: under load bestEffort's batches are the larger (column
leads/batch: the writer's cycle is set by the busy event loop, not by the linger); in a by-hand
sweep a linger of 0 ms raised bestEffort's CPU per request by about 15-20 %, 20 ms and 50 ms
changed nothing; and the gap stayed with the memory store (no Redis, no write at all: +29 % on
2026-12-05 08:12). The in-server scoring time said where: the same lead_to_row + featurize +
trees took 63 us per lead in bestEffort and 41 us in acknowledged. A waiting request yields to
the loop, so the leads that arrived together are all scored before their answers are written;
bestEffort answered each lead at once, alternating scoring with socket writes, with colder
caches. bestEffort now yields once before answering too: by hand (tmp script, 3 alternating 4 s
wrk -c32 runs, load 0.6-0.9), bestEffort 3513, 3674, 3640 req/s at 284, 272, 275 us CPU per
request without the yield; 4426, 4463, 4406 req/s at 226, 223, 227 us with it (acknowledged 4275
req/s, 232 us). The linger stays at 5 ms (it bounds bestEffort's SIGKILL window,
docs/operations.md)."""
NOTES = """Where a scorer request's time goes (2026-11-26, after the compiled tree path and the
/v1/lead ASGI fast path): `bench.scorer_profile` calls both apps through the whole ASGI stack in
process (no sockets), with cProfile on request; py-spy run on the uvicorn servers under wrk
agrees. Shared with the bare endpoint: uvicorn's HTTP parsing and socket write (h11 and the
asyncio loop when this was measured; uvloop and httptools are installed since, see
bench.scorer_experiment), the JSON parse and the pydantic Lead
validation. The bare endpoint also pays Starlette's middleware stack and routing, FastAPI's
per-request dependency solving and response_model serialization; the scorer's POST /v1/lead skips
them: `ScorerAPI` offers it first to `leadops.scorer.fastpath.LeadFastPath`, which answers a plain
application/json body within the size limit that validates as a Lead, with a model loaded, with
the route's own scoring code (`leadops.scorer.scoring`) and the same request metrics; anything
else (other content types, bad JSON, an invalid lead, a body past the limit, no model, dependency
overrides) is handed with its body replayed to the full FastAPI app, so the 413, 422 and 503
answers are FastAPI's, unchanged. The scorer's own extra, per lead: the compiled trees (ONNX
Runtime TreeEnsemble through io_binding; table above hot, about twice that inside a request, where
ONNX Runtime's code and the node arrays are out of cache), `lead_to_row` with PII redaction (must
run before featurize: the `details` text features - vocabulary words, contact mentions counted
from redaction placeholders - are computed on the redacted text that training reads, so moving
redaction into the write-behind would change scores), `featurize.vector`, the write-behind (one
Event per batch, which /v1/outcome and, with durability acknowledged, the request itself wait for;
batched Redis writes in one Lua call with the batch as one JSON argument), three Prometheus
histogram observations and a request counter, a lead id (os.urandom read 4 KiB at a time) and the
JSON response.
Compiled tree path candidates, measured once on this model (2026-11-26, single row, hot):
ONNX Runtime 1.32 `InferenceSession.run` 7.8-8.6 us (io_binding, as served: 6-10 us);
treelite 4.8.1 `gtil.predict` 546 us (59 us with nthread=1; GTIL is an interpreter); the numpy
level-walk evaluator it replaced 24 us (45 us in the previous run). ONNX Runtime keeps parity
with xgboost under 1e-6 (double thresholds and leaf sums), checked at every model load.
The machine is 2 cores shared with other jobs, so absolute figures move 2-3x between rounds;
the same-round ratios and the server CPU per request are the comparison.
"Server CPU us/request" is the server process's user+system CPU during the measured run divided
by the requests served: the cost per request with the other jobs' load taken out. The in-server
scoring time is wall time, so it also holds any preemption by other processes."""

# How many different synthetic leads the "varied" model times walk through, one at a time.
VARIED_LEADS = 256

LEAD: dict[str, object] = {
    "name": "Test",
    "phone": "555 0100",
    "email": "ops@acme.io",
    "details": "Hi, we need a price quote and a demo for our team of 20 please?",
    "source": "referral",
    "attributes": {"visits": 7.0, "plan": "pro"},
}


@dataclass
class Run:
    target: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_us_per_request: float = 0.0
    load_average: float = 0.0  # 1-minute load average right after the run
    # The scorer's own histogram: mean lead_to_row + featurize + trees per lead inside the server.
    scoring_us: float | None = None
    # Leads per write-behind batch (Redis runs one Lua call, so one TIME, per batch).
    batch_leads: float | None = None


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value.strip()).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


class Pinning:
    """--pin: the server under test on a CPU of its own, and everything else (wrk, Redis, this
    process) on the others, so the load generator never takes turns with the server on one
    core. Off: the kernel places them, and figures move with where it put them."""

    def __init__(self) -> None:
        self.server: set[int] | None = None
        self.others: set[int] | None = None

    def enable(self, *, redis: Iterable[subprocess.Popen[bytes] | None] = ()) -> None:
        """Pin this process (and so wrk, started from it) and the `redis` servers' processes
        to the other CPUs; servers started from now on go to the last CPU."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs two CPUs or more")
        self.server, self.others = {cpus[-1]}, set(cpus[:-1])
        os.sched_setaffinity(0, self.others)
        for process in redis:
            if process is not None:
                os.sched_setaffinity(process.pid, self.others)

    def place_server(self, pid: int) -> None:
        if self.server is not None:
            os.sched_setaffinity(pid, self.server)

    def describe(self) -> str:
        if self.server is None or self.others is None:
            return "not pinned to CPUs"
        return f"server pinned to CPU {min(self.server)}, wrk and Redis to CPU " + ", ".join(
            str(cpu) for cpu in sorted(self.others)
        )


PINNING = Pinning()


def wrk(url: str, body: dict[str, object], *, duration: int, connections: int) -> Run:
    script = WORK / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [[{json.dumps(body)}]]\n"
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Run(target=url, rps=rps, p50_ms=p50, p99_ms=p99, errors=errors, requests=done)


def mean_scoring_us(base: str) -> float:
    """Mean of the scorer's leadops_scoring_duration_seconds histogram over every lead it scored."""
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(httpx.get(base + "/metrics", timeout=5).text)
        for sample in family.samples
        if sample.name.startswith("leadops_scoring_duration_seconds_")
    }
    return (
        values["leadops_scoring_duration_seconds_sum"]
        / values["leadops_scoring_duration_seconds_count"]
        * 1e6
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc), load-independent per request."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(argv: list[str], *, port: int, env: dict[str, str], ready: str) -> Iterator[int]:
    log = (WORK / f"server-{port}.log").open("wb")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    PINNING.place_server(process.pid)  # before it starts any thread: they inherit it
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{argv[:3]} exited; see {log.name}")
            try:
                if httpx.get(base + ready, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{argv[:3]} not ready; see {log.name}")
            time.sleep(0.1)
        yield process.pid
    finally:
        terminate(process, timeout=15)
        log.close()


def ensure_mlserver() -> Path:
    binary = MLSERVER_VENV / "bin" / "mlserver"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
        pip = str(MLSERVER_VENV / "bin" / "pip")
        subprocess.run([pip, "install", "--quiet", *MLSERVER_PINS], check=True)
    return binary


def model_time(model_path: Path) -> dict[str, float]:
    """Microseconds per single-lead call: compiled trees, xgboost inplace and DMatrix predict.
    `*_varied`: the same steps over VARIED_LEADS different leads, one at a time: a lead repeated
    lets the CPU predict its one walk through the trees, which different leads do not."""
    art = artifact.load_artifact(model_path)
    ensemble = trees.compile_model(art.model)
    booster = xgboost.Booster()
    booster.load_model(bytearray(json.dumps(art.model).encode()))
    booster.set_param({"nthread": 1})
    row = lead_to_row(Lead.model_validate(LEAD), redact=pii.redact)
    x = featurize.vector(art.features, row)
    batch = x[None, :]
    rng = random.Random(11)
    rows = [lead_to_row(synthetic_lead(rng)[0], redact=pii.redact) for _ in range(VARIED_LEADS)]
    vectors = [featurize.vector(art.features, r) for r in rows]

    def best(fn: object, number: int, per: int = 1) -> float:
        seconds = min(timeit.repeat(fn, number=number, repeat=7))  # type: ignore[arg-type]
        return seconds / number / per * 1e6

    return {
        "compiled_varied": best(lambda: [ensemble.predict(v) for v in vectors], 20, VARIED_LEADS),
        "featurize_varied": best(
            lambda: [featurize.vector(art.features, r) for r in rows], 20, VARIED_LEADS
        ),
        "compiled": best(lambda: ensemble.predict(x), 5000),
        "xgboost_inplace": best(lambda: booster.inplace_predict(batch), 300),
        "xgboost_dmatrix": best(lambda: booster.predict(xgboost.DMatrix(batch)), 100),
        "featurize": best(lambda: featurize.vector(art.features, row), 2000),
        "featurize_matrix": best(lambda: featurize.matrix(art.features, [row])[0], 500),
        "lead_to_row": best(lambda: lead_to_row(Lead.model_validate(LEAD), redact=pii.redact), 500),
    }


def redis_clients(url: str, *, batches: int = 400, size: int = 16) -> dict[str, float]:
    """CPU microseconds per lead written: redis-py asyncio vs sync redis-py in a worker thread,
    both sending the scorer's one-Lua-call-per-batch write (store._SAVE_LEADS)."""
    record = {f"col{i}": f"value-{i}" for i in range(14)}
    batch = [
        store.LeadWrite(
            lead_id=f"{i:032x}", record=record, columns=list(record), memory="mem:t:c", message="hi"
        )
        for i in range(size)
    ]
    # The same command as RedisStore.save_leads sends, its deadline (store.DEADLINE_SHARE) an
    # hour away: this measures the client, not a timeout.
    keys, args = store.save_leads_command(batch, deadline_ms=int((time.time() + 3600) * 1000))

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    async def run() -> dict[str, float]:
        async_store = store.RedisStore(url, timeout=1.0)
        for _ in range(50):
            await async_store.save_leads(batch)
        start = cpu()
        for _ in range(batches):
            await async_store.save_leads(batch)
        async_us = (cpu() - start) / batches / size * 1e6
        await async_store.close()
        script = redis.Redis.from_url(url).register_script(store._SAVE_LEADS)
        for _ in range(50):
            await anyio.to_thread.run_sync(lambda: script(keys=keys, args=args))
        start = cpu()
        for _ in range(batches):
            await anyio.to_thread.run_sync(lambda: script(keys=keys, args=args))
        sync_us = (cpu() - start) / batches / size * 1e6
        return {"async": async_us, "sync_thread": sync_us}

    return asyncio.run(run())


def write_mlserver_model(model_path: Path, where: Path, port: int) -> None:
    art = artifact.load_artifact(model_path)
    model_dir = where / "leads"
    model_dir.mkdir(parents=True, exist_ok=True)
    raw = where / "booster.json"
    raw.write_text(json.dumps(art.model))
    # mlserver-xgboost loads a plain Booster file as XGBRegressor (no predict_proba); saving it
    # through XGBClassifier (in MLServer's own venv, which has scikit-learn) marks it a classifier.
    python = str(MLSERVER_VENV / "bin" / "python")
    convert = "import sys, xgboost; c = xgboost.XGBClassifier(); c.load_model(sys.argv[1]); "
    convert += "c.save_model(sys.argv[2])"
    subprocess.run([python, "-c", convert, str(raw), str(model_dir / "model.json")], check=True)
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "leads",
                "implementation": "mlserver_xgboost.XGBoostModel",
                "parameters": {"uri": "./model.json"},
            }
        )
    )
    (where / "settings.json").write_text(
        json.dumps(
            {
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                # Its worker pool dies here with "no current event loop": serve in-process.
                "parallel_workers": 0,
                "debug": False,
            }
        )
    )


BARE = "bare FastAPI (a)"
SCORER = "leadops scorer + Redis, acknowledged"
SPOOLED = "leadops scorer + Redis, spooled"
BEST_EFFORT = "leadops scorer + Redis, bestEffort"
# The two durabilities again with the in-memory store: no Redis, no write I/O. Whatever gap
# between them remains here is the HTTP serving pattern (requests that wait for their batch
# are answered in bursts), not the write-behind.
ACK_MEMORY = "leadops scorer, memory store, acknowledged"
BEST_EFFORT_MEMORY = "leadops scorer, memory store, bestEffort"
SCORERS = (SCORER, SPOOLED, BEST_EFFORT, ACK_MEMORY, BEST_EFFORT_MEMORY)
MLSERVER = "MLServer 1.7.1 xgboost (b)"
Target = tuple[list[str], dict[str, str], str, str, dict[str, object]]


def scorer_targets(
    model_path: Path, *, redis_url: str, base_env: dict[str, str]
) -> dict[str, Target]:
    """One `leadops serve` per durability (with Redis), and two with the memory store."""
    spool_dir = WORK / "spool"
    shutil.rmtree(spool_dir, ignore_errors=True)
    targets: dict[str, Target] = {}
    for name, durability, url in (
        (SCORER, "acknowledged", redis_url),
        (SPOOLED, "spooled", redis_url),
        (BEST_EFFORT, "bestEffort", redis_url),
        (ACK_MEMORY, "acknowledged", None),
        (BEST_EFFORT_MEMORY, "bestEffort", None),
    ):
        port = free_port()
        env = base_env | {
            "LEADOPS_API_KEYS": "bench-key-0123456789",
            "LEADOPS_DURABILITY": durability,
            "LEADOPS_SPOOL_DIR": str(spool_dir),
        }
        if url is not None:
            env["LEADOPS_REDIS_URL"] = url
        argv = [sys.executable, "-m", "leadops.cli", "serve", "--model", str(model_path)]
        argv += ["--port", str(port), "--log-level", "warning"]
        targets[name] = (argv, env, "/health", f"http://127.0.0.1:{port}/v1/lead", LEAD)
    return targets


def lua_calls(redis_server: RedisServer) -> int:
    """How many write-behind batches Redis ran since its stats were reset (one TIME each)."""
    stats = redis_server.client().info("commandstats")
    return int(stats.get("cmdstat_time", {}).get("calls", 0))


def run_rounds(
    targets: dict[str, Target],
    *,
    args: argparse.Namespace,
    redis_server: RedisServer | None = None,
    scorers: tuple[str, ...] = (),
) -> dict[str, list[Run]]:
    """Each round starts each target fresh, warms it up, then loads it with wrk. `scorers`:
    targets whose own scoring histogram is read too (default: every scorer target);
    `redis_server`: its write-behind batches are counted per target."""
    scorers = scorers or SCORERS
    results: dict[str, list[Run]] = {name: [] for name in targets}
    for round_ in range(args.rounds):
        for name, (argv_, env, ready, url, body) in targets.items():
            port = int(url.split(":")[2].split("/")[0])
            with serving(argv_, port=port, env=env, ready=ready) as pid:
                wrk(url, body, duration=2, connections=args.connections)  # warm-up
                if redis_server is not None:
                    redis_server.client().config_resetstat()
                cpu_before = cpu_seconds(pid)
                run = wrk(url, body, duration=args.duration, connections=args.connections)
                used = cpu_seconds(pid) - cpu_before
                if name in scorers:
                    run.scoring_us = mean_scoring_us(url.removesuffix("/v1/lead"))
                batches = lua_calls(redis_server) if redis_server is not None else 0
                if batches and name in SCORERS:
                    # Leads still buffered at the end count as written: off by one batch at most.
                    run.batch_leads = run.requests / batches
            run.cpu_us_per_request = used * 1e6 / max(run.requests, 1)
            run.load_average = os.getloadavg()[0]
            run.target = name
            results[name].append(run)
            print(
                f"round {round_ + 1} {name}: {run.rps:.0f} req/s p50 {run.p50_ms:.2f} ms "
                f"p99 {run.p99_ms:.2f} ms errors {run.errors} "
                f"cpu {run.cpu_us_per_request:.0f} us/request load {run.load_average:.1f}"
                + ("" if run.scoring_us is None else f" scoring {run.scoring_us:.0f} us/lead")
                + ("" if run.batch_leads is None else f" batch {run.batch_leads:.1f} leads")
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scorer", description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per target")
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--skip-mlserver", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench.scorer: wrk not found; install wrk: apt-get install wrk", file=sys.stderr)
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    model_path = WORK / "model-300.json"
    built = build_artifact(model_path, trees=args.trees, depth=6, rows=3000, seed=42)
    print(f"model: {args.trees} trees, {built.n_features} features -> {model_path}")
    micro = model_time(model_path)
    print("model time (us):", {k: round(v, 1) for k, v in micro.items()})
    from bench import scorer_profile  # noqa: PLC0415 -- it imports this module's LEAD

    in_process = asyncio.run(scorer_profile.measure(3000, rounds=5))
    print("in process:", in_process)

    art = artifact.load_artifact(model_path)
    vector = featurize.vector(
        art.features, lead_to_row(Lead.model_validate(LEAD), redact=pii.redact)
    )
    v2_body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [1, len(vector)],
                "datatype": "FP32",
                "data": [None if np.isnan(v) else float(v) for v in vector],
            }
        ],
        "outputs": [{"name": "predict_proba"}],
    }
    if any(d is None for d in v2_body["inputs"][0]["data"]):  # type: ignore[index]
        raise SystemExit("bench lead must have no missing features (V2 JSON has no NaN)")

    redis_server = RedisServer(WORK)
    redis_server.start()
    redis_cost = redis_clients(redis_server.url)
    print("redis write, cpu us per lead:", {k: round(v, 1) for k, v in redis_cost.items()})
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LEADOPS_")}
    py = sys.executable
    targets: dict[str, Target] = {}

    def add(
        name: str,
        argv_: list[str],
        *,
        env: dict[str, str],
        ready: str,
        path: str,
        body: dict[str, object],
    ) -> None:
        targets[name] = (argv_, env, ready, path, body)

    bare_port, ml_port = free_port(), free_port()
    add(
        BARE,
        [
            py,
            "-m",
            "uvicorn",
            "bench.bare_app:app",
            "--port",
            str(bare_port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=base_env | {"PYTHONPATH": str(ROOT)},
        ready="/health",
        path=f"http://127.0.0.1:{bare_port}/v1/lead",
        body=LEAD,
    )
    targets |= scorer_targets(model_path, redis_url=redis_server.url, base_env=base_env)
    if not args.skip_mlserver:
        ml = ensure_mlserver()
        ml_dir = WORK / "mlserver"
        write_mlserver_model(model_path, ml_dir, ml_port)
        add(
            MLSERVER,
            [str(ml), "start", str(ml_dir)],
            # One OpenMP thread that sleeps when idle: on 2 shared cores, spinning xgboost
            # threads only fight the HTTP server (the same setting the trainer uses).
            env=base_env | {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
            ready="/v2/health/ready",
            path=f"http://127.0.0.1:{ml_port}/v2/models/leads/infer",
            body=v2_body,
        )

    try:
        results = run_rounds(targets, args=args, redis_server=redis_server)
    finally:
        redis_server.stop()

    report(results, micro, redis_cost, in_process, args=args, n_features=built.n_features)
    return 0


def _batch(runs: list[Run]) -> str:
    sizes = [r.batch_leads for r in runs if r.batch_leads is not None]
    return f"{statistics.median(sizes):.1f}" if sizes else "-"


def best_run(runs: list[Run]) -> Run:
    return max(runs, key=lambda r: r.rps)


def report(
    results: dict[str, list[Run]],
    micro: dict[str, float],
    redis_cost: dict[str, float],
    in_process: scorer_profile.InProcess,
    *,
    args: argparse.Namespace,
    n_features: int,
) -> None:
    bare = best_run(results[BARE])
    ours = best_run(results[SCORER])
    ml = best_run(results[MLSERVER]) if MLSERVER in results else None
    lines = [
        "## Scorer: POST /v1/lead (bench/scorer.py)",
        "",
        f"- Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; "
        f"xgboost {xgboost.__version__}.",
        f"- Command: `.venv/bin/python -m bench.scorer --duration {args.duration} "
        f"--rounds {args.rounds} --connections {args.connections}"
        f"{' --skip-mlserver' if args.skip_mlserver else ''}`",
        f"- Model: {args.trees} trees, depth 6, {n_features} features (synthetic leads). "
        "Load: `wrk -t1 -c{0}` on loopback, one server at a time, rounds alternate targets; "
        "best round per target shown (median of rounds in brackets).".format(args.connections),
        "- The scorer runs as in production: real Redis (AOF everysec, batched writes), "
        "metrics, drift window; with durability acknowledged (the default: each lead is "
        "answered once its batch is in Redis), spooled (the same while Redis answers) and "
        "bestEffort (answered at once); acknowledged and bestEffort once more with the "
        "in-memory store (no Redis, no write I/O).",
        "",
        "| target | req/s | p50 ms | p99 ms | errors | server CPU us/request | leads/batch |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        b = best_run(runs)
        med = statistics.median(r.rps for r in runs)
        lines.append(
            f"| {name} | {b.rps:.0f} ({med:.0f}) | {b.p50_ms:.2f} | {b.p99_ms:.2f} | "
            f"{sum(r.errors for r in runs)} | "
            f"{statistics.median(r.cpu_us_per_request for r in runs):.0f} | {_batch(runs)} |"
        )
    # Load from other jobs swings 2-3x between rounds: pair each round's runs, which ran
    # back to back, and judge the goals on the median of those same-round ratios.
    per_round = [
        dict(zip(results, runs, strict=True)) for runs in zip(*results.values(), strict=True)
    ]
    thr = [r[SCORER].rps / r[BARE].rps for r in per_round]
    p99 = [r[SCORER].p99_ms / r[BARE].p99_ms for r in per_round]
    cpu = [r[BARE].cpu_us_per_request / r[SCORER].cpu_us_per_request for r in per_round]
    # Durability's price, same round: acknowledged against bestEffort.
    ack_thr = [r[SCORER].rps / r[BEST_EFFORT].rps for r in per_round]
    ack_p99 = [r[SCORER].p99_ms - r[BEST_EFFORT].p99_ms for r in per_round]
    spool_thr = [r[SPOOLED].rps / r[BEST_EFFORT].rps for r in per_round]
    spool_p99 = [r[SPOOLED].p99_ms - r[BEST_EFFORT].p99_ms for r in per_round]
    # CPU per request, bestEffort over acknowledged, with Redis and with the memory store.
    cpu_redis = [
        r[BEST_EFFORT].cpu_us_per_request / r[SCORER].cpu_us_per_request for r in per_round
    ]
    cpu_memory = [
        r[BEST_EFFORT_MEMORY].cpu_us_per_request / r[ACK_MEMORY].cpu_us_per_request
        for r in per_round
    ]
    loads = [run.load_average for runs in results.values() for run in runs]
    scoring = [r.scoring_us for r in results[SCORER] if r.scoring_us is not None]
    lines += [
        "",
        f"- Scorer vs bare (a), same-round ratios: throughput "
        f"{', '.join(f'{x:.0%}' for x in thr)} (median {statistics.median(thr):.0%}; "
        f"goal >= 60 %), p99 {', '.join(f'{x:.2f}x' for x in p99)} "
        f"(median {statistics.median(p99):.2f}x; goal <= 2x). Best vs best: "
        f"{ours.rps / bare.rps:.0%}, p99 {ours.p99_ms / bare.p99_ms:.2f}x.",
        f"- Load-independent view: bare server CPU per request / scorer's, same round: "
        f"{', '.join(f'{x:.0%}' for x in cpu)} (median {statistics.median(cpu):.0%}): the "
        "throughput share the scorer would get on an otherwise idle machine.",
        f"- Machine load (1-minute load average after each run): {min(loads):.1f} to "
        f"{max(loads):.1f} (median {statistics.median(loads):.1f}) on {os.cpu_count()} CPUs.",
    ]
    linger_ms = writer.LINGER_SECONDS * 1000
    lines.append(
        f"- Durability acknowledged vs bestEffort, same-round ratios: throughput "
        f"{', '.join(f'{x:.0%}' for x in ack_thr)} (median {statistics.median(ack_thr):.0%}; "
        f"goal >= 90 %), p99 difference {', '.join(f'{x:+.2f}' for x in ack_p99)} ms "
        f"(median {statistics.median(ack_p99):+.2f} ms; goal <= batch interval "
        f"{linger_ms:.0f} ms + 2 ms = {linger_ms + 2:.0f} ms)."
    )
    lines.append(
        f"- Durability spooled vs bestEffort (Redis up: spooled writes as acknowledged does), "
        f"same round: throughput {', '.join(f'{x:.0%}' for x in spool_thr)} "
        f"(median {statistics.median(spool_thr):.0%}), p99 difference "
        f"{', '.join(f'{x:+.2f}' for x in spool_p99)} ms "
        f"(median {statistics.median(spool_p99):+.2f} ms)."
    )
    lines.append(
        "- Server CPU per request, bestEffort / acknowledged, same round: with Redis "
        f"{', '.join(f'{x:.0%}' for x in cpu_redis)} (median {statistics.median(cpu_redis):.0%}); "
        f"with the memory store {', '.join(f'{x:.0%}' for x in cpu_memory)} "
        f"(median {statistics.median(cpu_memory):.0%})."
    )
    if ml is not None:
        vs_ml = [r[SCORER].rps / r[MLSERVER].rps for r in per_round]
        lines.append(
            f"- Scorer vs MLServer (b), same-round throughput ratios: "
            f"{', '.join(f'{x:.2f}x' for x in vs_ml)} (median {statistics.median(vs_ml):.2f}x; "
            f"goal >= 2x). Best vs best: {ours.rps / ml.rps:.2f}x."
        )
    lines += [
        "",
        "Model time per lead (best of 7 timeit repeats, microseconds):",
        "",
        "| path | us |",
        "|---|---:|",
        f"| compiled trees: ONNX Runtime TreeEnsemble, 1 row (leadops.scorer.trees) | "
        f"{micro['compiled']:.1f} |",
        f"| xgboost Booster.inplace_predict, 1 row | {micro['xgboost_inplace']:.1f} |",
        f"| xgboost Booster.predict(DMatrix), 1 row | {micro['xgboost_dmatrix']:.1f} |",
        f"| featurize.vector (contract; compiled per-spec plan) | {micro['featurize']:.1f} |",
        f"| featurize.matrix for one row (column-wise numpy; the old vector path) | "
        f"{micro['featurize_matrix']:.1f} |",
        f"| model time per lead = featurize.vector + compiled trees (goal <= 50) | "
        f"{micro['featurize'] + micro['compiled']:.1f} |",
        f"| the same over {VARIED_LEADS} different leads, one at a time (goal <= 50) | "
        f"{micro['featurize_varied'] + micro['compiled_varied']:.1f} |",
        f"| Lead parse + lead_to_row + PII redaction | {micro['lead_to_row']:.1f} |",
        "",
        "Model time inside requests (`bench.scorer_profile`: the scorer app called through "
        "its whole ASGI stack in process, wall clock per lead, median of "
        f"{in_process.rounds} rounds): featurize.vector {in_process.featurize_us:.1f} + "
        f"compiled trees {in_process.trees_us:.1f} = "
        f"{in_process.featurize_us + in_process.trees_us:.1f} us (goal <= 50); "
        "in-process CPU per request, bare "
        f"{in_process.bare_us:.0f} us, scorer {in_process.scorer_us:.0f} us.",
        "",
        "Inside the server under load (its own `leadops_scoring_duration_seconds` histogram: "
        "lead_to_row with PII redaction + featurize.vector + compiled trees, with caches shared "
        "with the HTTP stack), mean per lead per round: "
        f"{', '.join(f'{x:.0f}' for x in scoring)} us (median {statistics.median(scoring):.0f}).",
        "",
        "Redis client for the write-behind (CPU us per lead, batches of 16 in one Lua call): "
        f"redis-py asyncio {redis_cost['async']:.1f}, sync redis-py in a worker thread "
        f"{redis_cost['sync_thread']:.1f}. The scorer uses the asyncio client: no thread hop, "
        "and batching, not the client, is what sets the cost.",
        "",
        DURABILITY_NOTES,
        "",
        NOTES,
    ]
    section = "\n".join(lines)
    write_section("scorer", section)
    print(section)


if __name__ == "__main__":
    raise SystemExit(main())

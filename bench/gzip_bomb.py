"""The operator's memory while it refuses a gzip bomb in a registry ConfigMap.

    .venv/bin/python -m bench.gzip_bomb [--mib 600]

A registry ConfigMap as a tenant can write it: `--mib` MiB of zeros as ~0.1 % of that in
gzip. Each way of reading it runs in a fresh process that has imported the operator (kopf,
the kubernetes client, the registry codec and artifact facts), and reports that process's
peak resident memory (VmHWM) before and after:
- bounded: `registry.decode`, the operator's codec (streaming, ArtifactTooLarge at 16 MiB);
- baseline, same run: `gzip.decompress` of the same bytes, as the codec did before.
Target: the operator's peak under 200 MiB. The cluster-level figure (the whole operator,
installed with the chart, refusing the bomb) is measured by tests/integration/test_trust.py.
Writes its own section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from bench.docsection import machine, write_section

GOAL_MIB = 200.0

_CHILD = r"""
import base64, gzip, json, sys, time, zlib
import kopf, kubernetes  # what the operator process holds anyway
from leadops.operator import facts, handlers, registry

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

mib, way = int(sys.argv[1]), sys.argv[2]
packer = zlib.compressobj(9, zlib.DEFLATED, 31)
zeros = bytes(1 << 20)
packed = b"".join(packer.compress(zeros) for _ in range(mib)) + packer.flush()
del zeros
cm = {"metadata": {"name": "bomb-model-1"},
      "binaryData": {registry.DATA_KEY: base64.b64encode(packed).decode()}}
before = peak()
started = time.perf_counter()
if way == "bounded":
    try:
        registry.decode(cm)
        outcome = "decoded"
    except registry.RegistryError as exc:
        outcome = exc.reason
else:
    data = gzip.decompress(base64.b64decode(cm["binaryData"][registry.DATA_KEY]))
    outcome = f"decompressed {len(data) >> 20} MiB, then refused by size"
    del data
print(json.dumps({"before": before, "after": peak(), "outcome": outcome,
                  "seconds": time.perf_counter() - started, "packed": len(packed)}))
"""


def run(mib: int, way: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(mib), way],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.gzip_bomb", description=__doc__)
    parser.add_argument("--mib", type=int, default=600, help="zeros inside the bomb (MiB)")
    args = parser.parse_args(argv)
    started = time.time()
    bounded = run(args.mib, "bounded")
    baseline = run(args.mib, "baseline")
    b_after, base_after = float(bounded["after"]), float(baseline["after"])
    met = "**met**" if b_after < GOAL_MIB else "**missed**"
    body = "\n".join(
        [
            "## Gzip bomb in a registry ConfigMap (`bench/gzip_bomb.py`)",
            "",
            f"Machine: {machine()}. Measured {time.strftime('%Y-%m-%d', time.gmtime(started))}.",
            "",
            f"Reproduce: `.venv/bin/python -m bench.gzip_bomb --mib {args.mib}`. The bomb: "
            f"{args.mib} MiB of zeros as {int(bounded['packed']) // 1024} KiB of gzip "
            "(fits a ConfigMap). Each row is a fresh process that imported the operator; peak "
            "resident memory (VmHWM) before and after reading the bomb.",
            "",
            "| way of reading | outcome | peak RSS before | peak RSS after | target |",
            "| --- | --- | ---: | ---: | --- |",
            f"| `registry.decode` (bounded stream) | {bounded['outcome']} | "
            f"{float(bounded['before']):.0f} MiB | {b_after:.0f} MiB | < {GOAL_MIB:.0f} MiB: "
            f"{met} |",
            f"| baseline: `gzip.decompress` (the codec before) | {baseline['outcome']} | "
            f"{float(baseline['before']):.0f} MiB | {base_after:.0f} MiB | |",
            "",
            f"Ratio bounded / baseline peak: {b_after / base_after:.2f}. The whole operator "
            "(chart install, cluster-wide, as its ServiceAccount) refusing the same bomb from a "
            "tenant's ConfigMap: `tests/integration/test_trust.py::"
            "test_a_gzip_bomb_is_refused_within_the_memory_bound` asserts its VmHWM < 200 MiB "
            "and prints it.",
        ]
    )
    write_section("gzip_bomb", body + "\n")
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

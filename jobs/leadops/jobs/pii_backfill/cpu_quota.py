"""How many CPUs this process may use: its CPU affinity, capped by its cgroup's CPU quota."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def default_workers(*, cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """One detection worker per CPU this process may use: the CPUs it may run on, fewer
    if its cgroup has a CPU quota (a Kubernetes CPU limit: 500m is one worker)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))

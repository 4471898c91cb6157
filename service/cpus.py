"""How many CPUs the service may use, and the thread counts it derives from that.

`os.cpu_count()` is the host's count: in a container limited with `--cpus 2` or a Kubernetes
pod with `limits.cpu: 1` on a 64-core node it says 64, and pools sized from it oversubscribe
the quota (the kernel then throttles the whole process). The count here is the process's CPU
affinity, capped by the cgroup v2 CPU quota when one is set.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cgroup_cpu_quota(cpu_max: Path = CGROUP_CPU_MAX) -> int | None:
    """CPUs the cgroup's quota allows, rounded up; None when there is no quota (`max`), no
    cgroup v2 file, or one that cannot be read."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """CPUs this process may run on: its affinity mask, capped by the cgroup's quota."""
    affinity = getattr(os, "sched_getaffinity", None)
    count = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota(cpu_max)
    return max(1, min(count, quota) if quota is not None else count)


def default_tf_threads(cpus: int) -> tuple[int, int]:
    """TensorFlow's (intra-op, inter-op) threads: two ops at a time, each on half the CPUs.

    The shipped model is an ensemble (three members, each on the slice and its mirror image):
    six independent branches that an inter-op pool of two runs side by side. On the 2-core
    development machine (intra 1, inter 2) the raw batch-1 call took 0.56x the time of
    TensorFlow's own choice (9.5 against 16.7 ms) and the best batch gave 1.19x the images/s
    (docs/benchmarks.md, "TensorFlow's threads and the batch size"). One CPU gets one thread
    of each."""
    cpus = max(1, cpus)
    return max(1, cpus // 2), min(2, cpus)


def default_decode_threads(cpus: int) -> int:
    """Upload-check threads: one per CPU, at most 4."""
    return max(1, min(4, cpus))

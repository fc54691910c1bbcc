"""Running a cache build's decode jobs: in this process, or over worker processes.

Workers are started with ``forkserver`` (``spawn`` where that is missing), never
plain ``fork``: the service builds its cache inside a threaded server, and a
forked child of a threaded process can inherit locks held by other threads.
Each worker writes the decoded bytes into the cache files itself, so only
names and reasons travel back.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Final

from service.decode import DecodeJob, decode_into
from service.progress import Progress, as_progress

# Samples per task: large enough to amortise a task's round trip, small enough
# to keep the workers evenly busy to the end and the progress bar moving.
CHUNK_SIZE: Final = 16


CGROUP_CPU_MAX: Final = Path("/sys/fs/cgroup/cpu.max")


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota when one is set.

    A container limited to ``cpus: 2`` (or a Kubernetes CPU limit) still sees
    every CPU of the host in its affinity; its quota is in ``cpu.max``.
    """
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cpus = len(affinity) if affinity is not None else os.cpu_count() or 1
    quota = cgroup_cpu_quota(cpu_max)
    return cpus if quota is None else max(1, min(cpus, math.ceil(quota)))


def cgroup_cpu_quota(cpu_max: Path = CGROUP_CPU_MAX) -> float | None:
    """CPUs' worth of time the cgroup may use (``"200000 100000"`` is 2.0); None when unlimited."""
    try:
        fields = cpu_max.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def worker_count(workers: int | None, jobs: int) -> int:
    """Processes worth starting for ``jobs`` samples: ``workers`` (default: every CPU), capped."""
    wanted = available_cpus() if workers is None else workers
    if wanted < 1:
        raise ValueError(f"workers must be at least 1, not {wanted}")
    return max(1, min(wanted, math.ceil(jobs / CHUNK_SIZE)))


def _start_context() -> BaseContext:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def decode_all(
    jobs: Sequence[DecodeJob],
    images_file: Path,
    labels_file: Path,
    *,
    progress: Progress | bool = False,
    workers: int | None = None,
) -> dict[str, str | None]:
    """Decode every job into the cache files: name -> exclusion reason, or None when decoded."""
    chunks = [jobs[start : start + CHUNK_SIZE] for start in range(0, len(jobs), CHUNK_SIZE)]
    processes = worker_count(workers, len(jobs))
    outcomes: dict[str, str | None] = {}
    with as_progress(progress).phase("decoding", len(jobs), "images") as advance:
        if processes == 1:
            for chunk in chunks:
                outcomes.update(decode_into(chunk, images_file, labels_file))
                advance(len(chunk))
            return outcomes
        with ProcessPoolExecutor(processes, mp_context=_start_context()) as pool:
            futures = [
                pool.submit(decode_into, chunk, images_file, labels_file) for chunk in chunks
            ]
            for future in as_completed(futures):
                done = future.result()
                outcomes.update(done)
                advance(len(done))
    return outcomes

"""The issue's targets, judged on one run's results.

Each target names the figure it is judged on; a figure that could not be
measured (NaN) misses its target.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from bench.memory import ProcessMemory
from bench.results import Results
from bench.stats import Series, median

MB = 1e6
FLOAT_MODES = ("gluon-uint8", "gluon-float32")
UINT8_MODES = ("uint8", "stream")


@dataclass(frozen=True)
class Verdict:
    """One target: what it asks, what was measured (as text), whether it is met."""

    target: str
    measured: str
    met: bool


def chapter_rate(results: Results, workers: int) -> float:
    """Median samples/s of the chapter's pipeline with ``workers`` DataLoader workers."""
    series = results.series(f"chapter-{workers}w")
    return series.rate if series else math.nan


def best(results: Results, modes: Iterable[str]) -> Series | None:
    """The segserve series of one of ``modes`` with the highest median rate."""
    wanted = set(modes)
    found = [s for s in results.throughput if s.kind == "segserve" and s.mode in wanted]
    return max(found, key=lambda s: s.rate, default=None)


def workers_of(memory: list[ProcessMemory]) -> list[ProcessMemory]:
    """The uvicorn worker processes of a server (the main process when it has none)."""
    workers = [m for m in memory if m.role == "worker"]
    return workers or [m for m in memory if m.role == "main"]


def worker_pss(results: Results, workers: int = 2, *, outside_cache: bool = True) -> float:
    """Mean PSS (bytes) of a worker process of the ``workers``-worker server, by default
    without its share of the decoded cache's pages (in memory once for any number of workers)."""
    members = workers_of(results.startup.memory.get(str(workers), []))
    sizes = [m.pss_outside_cache if outside_cache else m.pss for m in members]
    return sum(sizes) / len(sizes) if sizes else math.nan


def growth_ratio(results: Results) -> float:
    """Median time per batch on the large dataset over that on the base one."""
    if len(results.growth) < 2:
        return math.nan
    base, large = results.growth[0], results.growth[-1]
    return median(large.seconds) / median(base.seconds)


def _speedup(
    results: Results,
    modes: Iterable[str],
    workers: int,
    goal: float,
    what: str = "float32 NCHW NDArray batches",
) -> Verdict:
    """The best segserve series of ``modes`` against the chapter with ``workers`` workers."""
    top = best(results, modes)
    rate = top.rate if top else math.nan
    ratio = rate / chapter_rate(results, workers)
    where = f" ({top.key})" if top else ""
    return Verdict(
        f"{what} >= {goal:g}x the chapter's {workers}-worker pipeline",
        f"{ratio:.1f}x: {rate:,.0f} vs {chapter_rate(results, workers):,.0f} samples/s{where}",
        ratio >= goal,
    )


def _stream(results: Results, workers: int, goal: float) -> Verdict:
    """The epoch stream against the ``BatchLoader`` on the same server."""
    stream = results.series(f"segserve-{workers}w-stream")
    loader = results.series(f"segserve-{workers}w-uint8")
    ratio = (stream.rate if stream else math.nan) / (loader.rate if loader else math.nan)
    rates = f"{stream.rate:,.0f} vs {loader.rate:,.0f}" if stream and loader else "not measured"
    return Verdict(
        f"epoch stream >= {goal:g}x the `BatchLoader` ({workers} worker"
        f"{'s' if workers > 1 else ''}, uint8)",
        f"{ratio:.2f}x: {rates} samples/s",
        ratio >= goal,
    )


def _uint8(results: Results) -> Verdict:
    top = best(results, UINT8_MODES)
    rate = top.rate if top else math.nan
    where = f" ({top.key})" if top else ""
    return Verdict(
        "uint8 batches >= 2,000 samples/s over loopback",
        f"{rate:,.0f} samples/s{where}",
        rate >= 2000,
    )


def _warm(results: Results, workers: int) -> Verdict:
    seconds = median(results.startup.warm_ready.get(str(workers), []))
    return Verdict(
        f"warm start < 1 s ({workers} worker{'s' if workers > 1 else ''}, start to /readyz)",
        f"{seconds:.2f} s",
        seconds < 1.0,
    )


def _cold(results: Results) -> Verdict:
    cold, chapter = median(results.startup.cold_build), median(results.startup.chapter_load)
    return Verdict(
        "cold build no slower than the chapter's load (train + val)",
        f"{cold:.1f} s vs {chapter:.1f} s",
        cold <= chapter,
    )


def server_pss(results: Results, workers: int) -> float:
    """Total PSS (bytes) of every process of the ``workers``-worker server."""
    members = results.startup.memory.get(str(workers), [])
    return sum(m.pss for m in members) if members else math.nan


def _memory(results: Results) -> Verdict:
    added = server_pss(results, 2) - server_pss(results, 1)
    pss = worker_pss(results)
    return Verdict(
        "each extra worker adds < 150 MB (PSS of the whole 2-worker server minus the "
        "1-worker one, after both served the same epochs)",
        f"{added / MB:.0f} MB (a worker's own PSS outside the shared cache: {pss / MB:.0f} MB)",
        added < 150 * MB,
    )


def _growth(results: Results) -> Verdict:
    ratio = growth_ratio(results)
    label = results.growth[-1].label if results.growth else "?"
    return Verdict(
        f"time per batch on the {label} dataset within 10 % of the 1x",
        f"{ratio:.2f}x the 1x time",
        ratio <= 1.10,
    )


def verdicts(results: Results) -> list[Verdict]:
    """Every target of the issue, judged."""
    return [
        _speedup(results, FLOAT_MODES, 0, 10.0),
        _speedup(results, FLOAT_MODES, 2, 5.0),
        # the drop-in as a user gets it: uint8 on the wire, normalised by the client
        _speedup(results, ("gluon-uint8",), 0, 15.0, "the Gluon drop-in (`load_data_voc`, raw)"),
        _uint8(results),
        *(_stream(results, workers, 0.9) for workers in (1, 2)),
        _warm(results, 1),
        _warm(results, 2),
        _cold(results),
        _memory(results),
        _growth(results),
    ]

"""Summaries of repeated measurements: medians, percentiles, per-epoch rates."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values."""
    return float(np.median(values)) if len(values) else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (linear interpolation); NaN for no values."""
    return float(np.percentile(values, q)) if len(values) else math.nan


@dataclass(frozen=True)
class Epoch:
    """One timed pass: samples delivered and when each batch was in hand (s after the start)."""

    samples: int
    stamps: list[float]

    @property
    def seconds(self) -> float:
        """From asking for the first batch to holding the last."""
        return self.stamps[-1] if self.stamps else math.nan

    @property
    def rate(self) -> float:
        """Samples per second over the whole pass."""
        return self.samples / self.seconds if self.stamps else math.nan

    @property
    def first(self) -> float:
        """Seconds to the first batch."""
        return self.stamps[0] if self.stamps else math.nan

    @property
    def intervals(self) -> list[float]:
        """Seconds between consecutive batches (the first batch excluded)."""
        return [b - a for a, b in zip(self.stamps, self.stamps[1:], strict=False)]


def measure_epochs(run: Callable[[int], Epoch], first: int, step: int, min_seconds: float) -> Epoch:
    """Whole epochs ``first``, ``first + step``, ... of ``run``, one after the other until
    ``min_seconds`` have passed, as one timed pass.

    On loopback an epoch of the fastest pipelines is over in a few tenths of a
    second, where one scheduling hiccup moves its rate by half; a trainer runs
    epoch after epoch. The stamps of each epoch are shifted by when it was asked
    for, so the first batch of every epoch after the first counts as an interval
    (the pause between epochs a trainer sees) and the rate is all samples over
    the whole time.
    """
    started = time.perf_counter()
    samples, stamps, j = 0, [], 0
    while True:
        offset = time.perf_counter() - started if j else 0.0
        epoch = run(first + step * j)
        samples += epoch.samples
        stamps += [offset + stamp for stamp in epoch.stamps]
        j += 1
        if time.perf_counter() - started >= min_seconds:
            return Epoch(samples, stamps)


def passes(min_seconds: float) -> str:
    """How a configuration ran in each round, for the reports."""
    if min_seconds <= 0:
        return "One epoch per configuration per round"
    return (
        f"Once per configuration per round: whole epochs, one after the other, until "
        f"{min_seconds:g} s had passed, timed as one pass (the first batch of each epoch "
        "after the first counts as an interval)"
    )


@dataclass(frozen=True)
class Series:
    """Every epoch of one configuration, and what a batch of it weighs on the wire.

    ``kind``: ``chapter`` (in process) or ``segserve`` (over HTTP); ``workers``:
    DataLoader workers or uvicorn workers; ``mode``: how segserve delivers.
    """

    kind: str
    workers: int
    mode: str
    epochs: list[Epoch]
    batch_bytes: int = 0

    @property
    def key(self) -> str:
        """A short unique name, e.g. ``chapter-0w`` or ``segserve-2w-gluon-uint8``."""
        suffix = f"-{self.mode}" if self.mode else ""
        return f"{self.kind}-{self.workers}w{suffix}"

    @property
    def rates(self) -> list[float]:
        """Samples per second of each epoch."""
        return [epoch.rate for epoch in self.epochs]

    @property
    def rate(self) -> float:
        """Median samples per second."""
        return median(self.rates)

    @property
    def megabytes_per_second(self) -> float:
        """Median wire throughput in MB/s (10^6 bytes); NaN for an in-process pipeline."""
        if not self.batch_bytes:
            return math.nan
        rates = [len(e.stamps) * self.batch_bytes / e.seconds / 1e6 for e in self.epochs]
        return median(rates)

    @property
    def first(self) -> float:
        """Median seconds to the first batch."""
        return median([epoch.first for epoch in self.epochs])

    def batch_percentile(self, q: float) -> float:
        """Percentile of the time per batch, pooled over the epochs (first batches excluded)."""
        return percentile([i for epoch in self.epochs for i in epoch.intervals], q)

    @property
    def batches(self) -> int:
        """Batch intervals the percentiles are taken over."""
        return sum(len(epoch.intervals) for epoch in self.epochs)

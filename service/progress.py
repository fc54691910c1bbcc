"""Progress of long work (demo generation, decoding into the cache): logged, shown, asked for.

One :class:`Progress` follows a sequence of phases. Each phase is logged when
it starts and when it ends (with its count and time), drawn as a tqdm bar
when ``bar`` is set (the server does so when its output is a terminal), and
described on request (``decoding 812 / 2913 images``) from any thread: the
server's ``/readyz`` answers with that while the dataset loads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Advance = Callable[[int], None]


class _Updates(Protocol):
    def update(self, count: int) -> object: ...


class _NoBar:
    """What a phase without a bar advances: nothing to draw, and no tqdm to import."""

    def update(self, count: int) -> None:
        pass


@cache
def _bar_class() -> type[Any]:
    """tqdm, imported when a bar is drawn (the server draws none unless on a terminal)."""
    from tqdm import tqdm

    class _Bar(tqdm):  # type: ignore[misc]
        """A progress bar without tqdm's monitor thread, which would stop a later fork."""

        monitor_interval = 0

    return _Bar


@contextmanager
def _bar(total: int, name: str, unit: str, shown: bool) -> Iterator[_Updates]:
    if not shown:
        yield _NoBar()
        return
    with _bar_class()(total=total, desc=name, unit=unit) as bar:
        yield bar


class Progress:
    """The current phase of a long task and how far it is, shared between threads."""

    def __init__(self, *, bar: bool = False) -> None:
        self.bar = bar
        self._lock = threading.Lock()
        self._phase: tuple[str, int, int, str] | None = None  # name, done, total, unit

    def describe(self) -> str | None:
        """``"<phase> <done> / <total> <unit>"`` while a phase runs, else None."""
        with self._lock:
            if self._phase is None:
                return None
            name, done, total, unit = self._phase
        return f"{name} {done} / {total} {unit}"

    @contextmanager
    def phase(self, name: str, total: int, unit: str) -> Iterator[Advance]:
        """Run a phase of ``total`` items; the block calls the yielded function with each step."""
        logger.info("%s: %d %s", name, total, unit)
        started = time.perf_counter()
        with self._lock:
            self._phase = (name, 0, total, unit)
        with _bar(total, name, unit, self.bar) as bar:

            def advance(count: int) -> None:
                with self._lock:
                    if self._phase is not None:
                        self._phase = (name, self._phase[1] + count, total, unit)
                bar.update(count)

            try:
                yield advance
            finally:
                with self._lock:
                    self._phase = None
        logger.info("%s: %d %s in %.1f s", name, total, unit, time.perf_counter() - started)


def as_progress(progress: Progress | bool) -> Progress:
    """``progress`` itself, or a new one (with a bar when ``progress`` is True)."""
    return progress if isinstance(progress, Progress) else Progress(bar=progress)

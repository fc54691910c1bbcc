"""Rolling updates: on SIGTERM, stop taking work, finish what is in flight, then let uvicorn stop.

uvicorn's own SIGTERM handling (``Server.handle_exit``) sets ``should_exit``;
its shutdown then closes the listening sockets at once, closes idle
keep-alive connections, lets responses in progress finish for up to
``timeout_graceful_shutdown`` seconds (forever when unset) and cancels the
rest. That never says "not ready" to anyone, a queued request would be
dropped with its connection, and an epoch stream would either hold the
shutdown for its whole length or be cut mid-frame.

So the app puts its own handler in front of uvicorn's, for the lifespan:
the first SIGTERM makes :class:`~app.admission.WorkSlots` drain (``/readyz``
and new heavy requests answer 503 with ``Retry-After`` and ``Connection:
close``, waiting requests are refused, streams end after their current
frame), waits until no batch is being built and no stream is open (at most
``drain_seconds``), then calls uvicorn's handler, whose shutdown is left a
short ``SHUTDOWN_GRACE`` to send the last bytes. A second SIGTERM goes
straight to uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Final

from app.admission import WorkSlots

logger = logging.getLogger(__name__)

# Seconds of the drain period left to uvicorn's own shutdown (its
# timeout_graceful_shutdown): by then only sending remains.
SHUTDOWN_GRACE: Final = 2.0


def work_seconds(drain_seconds: float) -> float:
    """The part of the drain period spent waiting for in-flight work."""
    return max(0.0, drain_seconds - SHUTDOWN_GRACE)


async def drain(slots: WorkSlots, seconds: float) -> bool:
    """Drain ``slots`` and wait for their work to end; False when ``seconds`` ran out first."""
    slots.drain()
    logger.info(
        "draining: %d batches being built, %d streams; waiting up to %.0f s",
        slots.busy,
        slots.streams,
        seconds,
    )
    try:
        await asyncio.wait_for(slots.wait_idle(), seconds)
    except TimeoutError:
        logger.warning("draining: work still in flight after %.0f s; stopping anyway", seconds)
        return False
    logger.info("draining: no work in flight; stopping")
    return True


class _SigtermHandler:
    """The first SIGTERM starts the drain on the loop; the drain, or a second one, goes on."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, slots: WorkSlots, seconds: float, previous: object
    ) -> None:
        self._loop = loop
        self._slots = slots
        self._seconds = seconds
        self.previous = previous
        self._seen = False
        self._task: asyncio.Task[None] | None = None

    def __call__(self, sig: int, frame: FrameType | None) -> None:
        if self._seen:  # a second SIGTERM: stop now
            _forward(self.previous, frame)
            return
        self._seen = True
        logger.info("SIGTERM: draining for at most %.0f s", self._seconds)
        self._loop.call_soon_threadsafe(self._start, frame)

    def _start(self, frame: FrameType | None) -> None:
        self._task = self._loop.create_task(self._drain_then_stop(frame))

    async def _drain_then_stop(self, frame: FrameType | None) -> None:
        await drain(self._slots, work_seconds(self._seconds))
        _forward(self.previous, frame)


@contextmanager
def drain_on_sigterm(slots: WorkSlots, drain_seconds: float) -> Iterator[None]:
    """While the block runs, the first SIGTERM drains ``slots`` before the previous handler runs.

    Signals can only be handled in the main thread; elsewhere (the test
    client runs the lifespan in a thread of its own) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    handler = _SigtermHandler(asyncio.get_running_loop(), slots, drain_seconds, previous)
    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _forward(previous: object, frame: FrameType | None) -> None:
    """Hand SIGTERM to the handler that was there before (uvicorn's), or its default action."""
    if callable(previous):
        previous(signal.SIGTERM, frame)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)

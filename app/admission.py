"""Admission of heavy requests: a few are built at once, the next ones wait their turn, briefly.

Building a batch is CPU work; running more of them at once than there are CPUs
only makes each slower and multiplies the memory held. So at most ``limit``
heavy requests (crops, batches, each batch of an epoch stream) are built at
once. A request that finds every slot taken joins a queue and is served first
come, first served; it is refused with 503 and ``Retry-After`` only when the
queue already holds ``queue_limit`` requests or its wait passes
``wait_seconds``. A waiting request holds no batch, only its coroutine, so
memory grows with the slots, not with the queue.

An epoch stream is admitted like a batch (its first batch is built under that
admission), then queues again for each further batch, without a time bound:
a long stream shares the slots with batch requests instead of holding one
for its whole length.

Everything here runs on the event loop of the app (no locks): a slot freed is
handed to the oldest waiter directly, so nobody can overtake the queue.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import NoReturn, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from app.metrics import AdmissionMetrics
from app.problems import DrainingError, OverloadedError

P = ParamSpec("P")
T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]


class WorkSlots:
    """At most ``limit`` heavy requests at once; up to ``queue_limit`` more wait, in order.

    ``sleep`` is what a waiting request awaits for its time bound (tests pass a
    clock of their own instead of :func:`asyncio.sleep`).
    """

    def __init__(
        self,
        limit: int,
        *,
        queue_limit: int,
        wait_seconds: float,
        metrics: AdmissionMetrics,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if limit < 1 or queue_limit < 0 or wait_seconds < 0:
            raise ValueError(f"bad admission bounds: {limit}, {queue_limit}, {wait_seconds}")
        self.limit = limit
        self.queue_limit = queue_limit
        self.wait_seconds = wait_seconds
        self._metrics = metrics
        self._sleep = sleep
        self._busy = 0
        self._streams = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._draining = False
        self._idle: asyncio.Event | None = None
        metrics.limit.set(limit)

    @property
    def busy(self) -> int:
        """Slots in use."""
        return self._busy

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot."""
        return len(self._waiters)

    @property
    def streams(self) -> int:
        """Epoch streams open."""
        return self._streams

    @property
    def draining(self) -> bool:
        """Whether :meth:`drain` was called: no new work is admitted."""
        return self._draining

    async def acquire(self, *, bounded: bool = True) -> None:
        """Take a slot, waiting in turn; 503 (``OverloadedError``) beyond the queue's bounds.

        ``bounded=False`` (a stream's next batch) waits as long as it takes and
        is not counted against ``queue_limit``; it still fails when draining.
        """
        if self._draining:
            self._refuse("draining")
        if self._busy < self.limit and not self._waiters:
            self._busy += 1
            self._sync_gauges()
            self._metrics.wait.observe(0.0)
            return
        if bounded and len(self._waiters) >= self.queue_limit:
            self._refuse("queue-full")
        await self._wait_turn(bounded)

    def release(self) -> None:
        """Give the slot back: to the oldest waiter when there is one."""
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot changes hands; busy stays the same
                self._sync_gauges()
                return
        self._busy -= 1
        self._sync_gauges()

    @asynccontextmanager
    async def slot(self, *, bounded: bool = True) -> AsyncIterator[None]:
        """Hold a slot for the block (see :meth:`acquire`)."""
        await self.acquire(bounded=bounded)
        try:
            yield
        finally:
            self.release()

    async def run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``func(*args, **kwargs)`` in a worker thread, holding a slot."""
        async with self.slot():
            return await run_in_threadpool(func, *args, **kwargs)

    @asynccontextmanager
    async def stream(self) -> AsyncIterator[None]:
        """Count an epoch stream as work in flight for the block (see :meth:`wait_idle`)."""
        self._streams += 1
        try:
            yield
        finally:
            self._streams -= 1
            self._sync_gauges()

    def drain(self) -> None:
        """Admit nothing new from now on; every waiting request is refused (503, draining)."""
        self._draining = True
        waiters, self._waiters = list(self._waiters), deque()
        for turn in waiters:
            if not turn.done():
                turn.set_exception(self._refusal("draining"))
        self._sync_gauges()

    async def wait_idle(self) -> None:
        """Return once no slot is busy and no stream is open."""
        while self._busy or self._streams:
            self._idle = asyncio.Event()
            await self._idle.wait()

    async def _wait_turn(self, bounded: bool) -> None:
        """Queue until a slot is handed over, or (``bounded``) until ``wait_seconds`` pass."""
        turn = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        self._sync_gauges()
        queued = time.monotonic()
        timer = asyncio.ensure_future(self._sleep(self.wait_seconds)) if bounded else None
        try:
            waits = [turn] if timer is None else [turn, timer]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._abandon(turn)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if not turn.done():
            self._abandon(turn)
            self._refuse("timeout")
        self._metrics.wait.observe(time.monotonic() - queued)
        turn.result()  # raises the refusal when the server started draining meanwhile

    def _abandon(self, turn: asyncio.Future[None]) -> None:
        """Leave the queue; a slot handed over in the meantime goes to the next in line."""
        if turn.done() and not turn.cancelled() and turn.exception() is None:
            self.release()
            return
        if turn in self._waiters:
            self._waiters.remove(turn)
        turn.cancel()
        self._sync_gauges()

    def _refusal(self, reason: str) -> OverloadedError:
        self._metrics.refused.labels(reason).inc()
        if reason == "draining":
            return DrainingError("the server is shutting down; retry on another replica")
        if reason == "queue-full":
            return OverloadedError(
                f"{self.limit} heavy requests are running and {self.queue_limit} waiting, "
                "the most this server queues; retry shortly"
            )
        return OverloadedError(
            f"no slot for heavy work freed within {self.wait_seconds:g} s "
            f"({self.limit} running, {len(self._waiters)} waiting); retry shortly"
        )

    def _refuse(self, reason: str) -> NoReturn:
        raise self._refusal(reason)

    def _sync_gauges(self) -> None:
        self._metrics.busy.set(self._busy)
        self._metrics.depth.set(len(self._waiters))
        if self._idle is not None and not (self._busy or self._streams):
            self._idle.set()

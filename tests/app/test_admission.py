"""The admission queue: bounded depth, bounded wait (on a clock of the test's), order, draining.

No test sleeps: time passes only when a test advances :class:`FakeClock`, and
``settle`` just lets the event loop run the tasks that are ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from app.admission import WorkSlots
from app.metrics import Metrics
from app.problems import DrainingError, OverloadedError


class FakeClock:
    """``sleep`` returns once the test has advanced the time past the sleeper's deadline."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        wake = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, wake))
        await wake

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for deadline, wake in self._sleepers:
            if deadline <= self.now and not wake.done():
                wake.set_result(None)


async def settle() -> None:
    """Let every task that can run, run (a bounded number of loop turns, no waiting)."""
    for _ in range(20):
        await asyncio.sleep(0)


def make_slots(
    limit: int = 1, queue_limit: int = 8, wait: float = 10.0
) -> tuple[WorkSlots, FakeClock, Metrics]:
    clock, metrics = FakeClock(), Metrics()
    slots = WorkSlots(
        limit, queue_limit=queue_limit, wait_seconds=wait, metrics=metrics.admission,
        sleep=clock.sleep,
    )  # fmt: skip
    return slots, clock, metrics


def refused(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "segserve_admission_refused_total", {"reason": reason}
    )
    return float(value or 0.0)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``test`` on a new event loop, in a thread of its own: this thread may have one
    running already (playwright's sync API leaves its loop in the main thread)."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, test()).result()


def test_free_slots_are_taken_at_once() -> None:
    async def test() -> None:
        slots, _, metrics = make_slots(limit=2)
        await slots.acquire()
        await slots.acquire()
        assert (slots.busy, slots.waiting) == (2, 0)
        assert metrics.registry.get_sample_value("segserve_admission_slots_busy") == 2

    run(test)


def test_waiting_requests_are_served_in_arrival_order() -> None:
    async def test() -> None:
        slots, _, metrics = make_slots(limit=1)
        await slots.acquire()
        served: list[int] = []

        async def request(number: int) -> None:
            await slots.acquire()
            served.append(number)

        tasks = []
        for number in range(5):
            tasks.append(asyncio.create_task(request(number)))
            await settle()  # each joins the queue before the next arrives
        assert slots.waiting == 5
        assert metrics.registry.get_sample_value("segserve_admission_queue_depth") == 5
        for expected in range(5):
            slots.release()
            await settle()
            assert served == list(range(expected + 1))
        assert (slots.busy, slots.waiting) == (1, 0)
        await asyncio.gather(*tasks)

    run(test)


def test_a_full_queue_refuses_at_once() -> None:
    async def test() -> None:
        slots, _, metrics = make_slots(limit=1, queue_limit=2)
        await slots.acquire()
        waiting = [asyncio.create_task(slots.acquire()) for _ in range(2)]
        await settle()
        with pytest.raises(OverloadedError, match="1 heavy requests are running and 2 waiting"):
            await slots.acquire()
        assert slots.waiting == 2
        assert refused(metrics, "queue-full") == 1
        for _ in range(3):
            slots.release()
        await asyncio.gather(*waiting)

    run(test)


def test_a_wait_ends_when_its_time_is_up() -> None:
    async def test() -> None:
        slots, clock, metrics = make_slots(limit=1, wait=5.0)
        await slots.acquire()
        waiter = asyncio.create_task(slots.acquire())
        await settle()
        clock.advance(4.9)
        await settle()
        assert not waiter.done()
        clock.advance(0.2)
        await settle()
        with pytest.raises(OverloadedError, match="within 5 s"):
            await waiter
        assert slots.waiting == 0
        assert refused(metrics, "timeout") == 1
        slots.release()
        assert slots.busy == 0

    run(test)


def test_a_slot_freed_before_the_time_is_up_is_handed_over() -> None:
    async def test() -> None:
        slots, clock, _ = make_slots(limit=1, wait=5.0)
        await slots.acquire()
        waiter = asyncio.create_task(slots.acquire())
        await settle()
        slots.release()
        clock.advance(60)
        await settle()
        await waiter  # it got the slot: no refusal although its time has passed since
        assert (slots.busy, slots.waiting) == (1, 0)

    run(test)


def test_a_cancelled_waiter_leaves_the_queue_and_passes_its_turn_on() -> None:
    async def test() -> None:
        slots, _, _ = make_slots(limit=1)
        await slots.acquire()
        first = asyncio.create_task(slots.acquire())
        await settle()
        second = asyncio.create_task(slots.acquire())
        await settle()
        first.cancel()
        await settle()
        assert slots.waiting == 1
        slots.release()
        await second
        assert (slots.busy, slots.waiting) == (1, 0)

    run(test)


def test_unbounded_waits_ignore_the_depth_and_the_time() -> None:
    async def test() -> None:
        slots, clock, _ = make_slots(limit=1, queue_limit=0, wait=1.0)
        await slots.acquire()
        with pytest.raises(OverloadedError):
            await slots.acquire()
        stream_batch = asyncio.create_task(slots.acquire(bounded=False))
        await settle()
        clock.advance(3600)
        await settle()
        assert not stream_batch.done()
        slots.release()
        await stream_batch

    run(test)


def test_draining_refuses_waiting_and_new_requests_and_tells_when_idle() -> None:
    async def test() -> None:
        slots, _, metrics = make_slots(limit=1)
        await slots.acquire()
        waiter = asyncio.create_task(slots.acquire())
        async with slots.stream():
            await settle()
            slots.drain()
            with pytest.raises(DrainingError):
                await waiter
            with pytest.raises(DrainingError):
                await slots.acquire()
            idle = asyncio.create_task(slots.wait_idle())
            slots.release()
            await settle()
            assert not idle.done()  # the stream is still open
        await idle
        assert refused(metrics, "draining") == 2

    run(test)


def test_run_forwards_arguments_and_frees_the_slot() -> None:
    async def test() -> None:
        slots, _, _ = make_slots(limit=1)
        assert await slots.run(divmod, 17, 5) == (3, 2)
        assert await slots.run(int, "ff", base=16) == 255
        assert slots.busy == 0

    run(test)

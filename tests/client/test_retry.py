"""The one retry loop: overload waits (Retry-After, jitter) until a deadline; failover; streams."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from segserve_client import DeadlineExceededError, SegClient, UnavailableError
from segserve_client.protocol import wire
from segserve_client.retry import DEFAULT_DEADLINE, RetryPolicy

from tests.client.conftest import FakeClock, batch_body
from tests.client.fakeserver import FakeServer, Reply, Request, json_reply, problem
from tests.client.live import free_port

Serve = Callable[[Callable[[Request], Reply]], FakeServer]
MakeClient = Callable[..., SegClient]
BUSY = problem(
    503, "Service overloaded: 4 heavy requests are already running", **{"Retry-After": "5"}
)
SPLIT_INFO = json_reply({"name": "train", "size": 40, "usable": 40, "batches": 20})


def answer_batches(request: Request) -> Reply:
    """The batch whose number the path ends with."""
    return Reply(body=batch_body(int(request.path.rsplit("/", 1)[1])))


def test_overload_waits_out_retry_after_until_served(
    serve: Serve, make_client: MakeClient, clock: FakeClock
) -> None:
    replies = itertools.chain([BUSY] * 30, itertools.repeat(None))
    server = serve(lambda r: next(replies) or answer_batches(r))
    batch = make_client(server.url).batch("train", 4, height=4, width=6)
    assert batch.number == 4
    assert clock.sleeps == [5.0] * 30  # 150 s of overload: far more than a few tries
    assert len(server.requests) == 31


def test_waits_are_jittered_above_retry_after(
    serve: Serve, make_client: MakeClient, clock: FakeClock
) -> None:
    draws = iter([0.0, 1.0, 0.5])
    replies = iter([BUSY, BUSY, BUSY])
    server = serve(lambda r: next(replies, None) or answer_batches(r))
    client = make_client(server.url, jitter=0.2, random=lambda: next(draws))
    client.batch("train", 0, height=4, width=6)
    assert clock.sleeps == pytest.approx([5.0, 6.0, 5.5])


def test_429_without_retry_after_backs_off_with_jitter(
    serve: Serve, make_client: MakeClient, clock: FakeClock
) -> None:
    replies = iter([problem(429, "slow down")] * 3)
    server = serve(lambda r: next(replies, None) or json_reply([]))
    assert make_client(server.url, backoff=1.0, jitter=0.5, random=lambda: 1.0).classes() == []
    assert clock.sleeps == [1.5, 3.0, 6.0]


def test_deadline_error_names_url_wait_and_reason(
    serve: Serve, make_client: MakeClient, clock: FakeClock
) -> None:
    server = serve(lambda _: BUSY)
    client = make_client(server.url, deadline=12.0)
    with pytest.raises(DeadlineExceededError) as caught:
        client.batch("train", 2, height=4, width=6, seed=9)
    error = caught.value
    assert clock.sleeps == [5.0, 5.0]  # a third wait would end after the deadline
    assert (error.waited, error.attempts, error.deadline) == (10.0, 3, 12.0)
    assert error.url.startswith(f"{server.url}/v1/splits/train/batches/2?")
    assert "seed=9" in error.url
    assert isinstance(error.reason, UnavailableError)
    assert error.__cause__ is error.reason
    message = str(error)
    for part in (server.url, "10.0 s", "3 attempts", "503", "overloaded", "Retry-After 5"):
        assert part in message


def test_default_deadline_is_minutes() -> None:
    assert DEFAULT_DEADLINE >= 300
    assert RetryPolicy().deadline == DEFAULT_DEADLINE
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=-1)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)


def test_deadline_zero_tries_once(serve: Serve, make_client: MakeClient, clock: FakeClock) -> None:
    server = serve(lambda _: BUSY)
    with pytest.raises(DeadlineExceededError):
        make_client(server.url, deadline=0).dataset()
    assert len(server.requests) == 1
    assert clock.sleeps == []


def test_overloaded_replica_fails_over_without_waiting(
    serve: Serve, make_client: MakeClient, clock: FakeClock
) -> None:
    busy = serve(lambda _: BUSY)
    healthy = serve(answer_batches)
    dead = f"http://127.0.0.1:{free_port()}"
    client = make_client([busy.url, dead, healthy.url])
    assert [client.batch("train", n, height=4, width=6).number for n in range(6)] == list(range(6))
    assert clock.sleeps == []
    assert len(busy.requests) == 1  # then out of rotation for its Retry-After
    assert client.replicas.healthy() == [False, False, True]


def _frames(numbers: range, whole: int | None = None) -> bytes:
    """Stream frames of ``numbers``; only the first ``whole`` of them when given."""
    frames = [wire.frame_prefix(len(b)) + b for b in map(batch_body, numbers)]
    return b"".join(frames[:whole])


def test_stream_that_ends_early_is_resumed(
    serve: Serve, make_client: MakeClient, clock: FakeClock
) -> None:
    """A replica draining at a frame boundary: a clean end before the last batch asked for."""

    def answer(request: Request) -> Reply:
        if request.path == "/v1/splits/train":
            return SPLIT_INFO
        start = int(request.query["start"])
        numbers = range(start, int(request.query["stop"]), int(request.query["step"]))
        return Reply(body=_frames(numbers, whole=3 if start == 0 else None), chunked=True)

    server = serve(answer)
    batches = make_client(server.url).stream_epoch("train", 0, height=4, width=6)
    assert [b.number for b in batches] == list(range(20))
    streams = [r.query["start"] for r in server.requests if "/epochs/" in r.path]
    assert streams == ["0", "3"]
    assert len(clock.sleeps) == 1  # one replica: it waits out its back-off


def test_stream_resumes_on_the_other_replica(
    serve: Serve, make_client: MakeClient, clock: FakeClock
) -> None:
    def drained(request: Request) -> Reply:
        if request.path == "/v1/splits/train":
            return SPLIT_INFO
        numbers = range(int(request.query["start"]), int(request.query["stop"]))
        return Reply(body=_frames(numbers, whole=5), chunked=True)

    def whole(request: Request) -> Reply:
        if "/epochs/" not in request.path:
            return SPLIT_INFO
        numbers = range(int(request.query["start"]), int(request.query["stop"]))
        return Reply(body=_frames(numbers), chunked=True)

    first, second = serve(drained), serve(whole)
    batches = list(make_client([first.url, second.url]).stream_epoch("train", 1, height=4, width=6))
    assert [b.number for b in batches] == list(range(20))
    assert [r.query["start"] for r in second.requests if "/epochs/" in r.path] == ["5"]
    assert clock.sleeps == []

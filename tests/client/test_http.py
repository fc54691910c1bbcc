"""SegClient against scripted servers: auth, errors, retries, Retry-After, failover, framing."""

from __future__ import annotations

import email.utils
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from segserve_client import (
    AuthenticationError,
    BatchRequest,
    DeadlineExceededError,
    InvalidParameterError,
    NotFoundError,
    ProtocolError,
    SegClient,
    ServerError,
    TransportError,
    UnavailableError,
)
from segserve_client.protocol import wire
from segserve_client.transport import retry_after_seconds

from tests.client.conftest import FakeClock, batch_body
from tests.client.fakeserver import FakeServer, Reply, Request, json_reply, problem
from tests.client.live import free_port

Serve = Callable[[Callable[[Request], Reply]], FakeServer]
MakeClient = Callable[..., SegClient]
DATASET = {"name": "voc", "num_classes": 21, "ignore_index": 255, "splits": []}


def scripted(*replies: Reply) -> Callable[[Request], Reply]:
    """Answer with ``replies`` in order, then repeat the last one."""
    queue = itertools.chain(replies, itertools.repeat(replies[-1]))
    return lambda _: next(queue)


def test_token_is_sent_as_bearer(serve: Serve, make_client: MakeClient) -> None:
    server = serve(lambda _: json_reply(DATASET))
    assert make_client(server.url, token="s3cret").dataset() == DATASET
    assert server.requests[0].headers["Authorization"] == "Bearer s3cret"
    assert server.requests[0].path == "/v1/dataset"


def test_no_token_no_authorization_header(serve: Serve, make_client: MakeClient) -> None:
    server = serve(lambda _: json_reply(DATASET))
    make_client(server.url).dataset()
    assert "Authorization" not in server.requests[0].headers


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (404, NotFoundError), (422, InvalidParameterError)],
)
def test_client_errors_carry_the_problem_and_are_not_retried(
    serve: Serve, make_client: MakeClient, clock: FakeClock, status: int, error: type[ServerError]
) -> None:
    server = serve(lambda _: problem(status, "batch_size: must be an integer >= 1, got 0"))
    with pytest.raises(error) as caught:
        make_client(server.url).split("train", batch_size=1, height=1, width=1)
    assert caught.value.status == status
    assert caught.value.problem["detail"] == "batch_size: must be an integer >= 1, got 0"
    assert caught.value.detail.startswith("batch_size")
    assert len(server.requests) == 1
    assert clock.sleeps == []


def test_retry_after_is_honoured(serve: Serve, make_client: MakeClient, clock: FakeClock) -> None:
    server = serve(scripted(problem(503, "busy", **{"Retry-After": "7"}), json_reply(DATASET)))
    assert make_client(server.url).dataset() == DATASET
    assert clock.sleeps == [7.0]
    assert len(server.requests) == 2


def test_429_retry_after_http_date(serve: Serve, make_client: MakeClient, clock: FakeClock) -> None:
    when = email.utils.formatdate(time.time() + 300, usegmt=True)
    server = serve(scripted(problem(429, "slow down", **{"Retry-After": when}), json_reply([])))
    assert make_client(server.url).classes() == []
    assert len(clock.sleeps) == 1
    assert 250 < clock.sleeps[0] <= 300


def test_retry_after_is_capped(serve: Serve, make_client: MakeClient, clock: FakeClock) -> None:
    server = serve(scripted(problem(503, "later", **{"Retry-After": "86400"}), json_reply([])))
    assert make_client(server.url).classes() == []
    assert clock.sleeps == [600.0]


def test_5xx_backs_off_exponentially_until_the_deadline(
    serve: Serve, make_client: MakeClient, clock: FakeClock
) -> None:
    server = serve(lambda _: problem(500, "boom"))
    with pytest.raises(DeadlineExceededError) as caught:
        make_client(server.url, deadline=1.8, backoff=0.25).dataset()
    assert isinstance(caught.value.reason, UnavailableError)
    assert caught.value.reason.status == 500
    assert clock.sleeps == [0.25, 0.5, 1.0]  # the next wait (2.0) would pass the deadline
    assert len(server.requests) == 4
    assert caught.value.attempts == 4


def test_refused_connection_is_a_transport_error(make_client: MakeClient, clock: FakeClock) -> None:
    with pytest.raises(DeadlineExceededError) as caught:
        make_client(f"http://127.0.0.1:{free_port()}", deadline=3.5, backoff=1.0).dataset()
    assert isinstance(caught.value.reason, TransportError)
    assert isinstance(caught.value.__cause__, TransportError)
    assert clock.sleeps == [1.0, 2.0]


def test_failover_to_the_healthy_replica(
    serve: Serve, make_client: MakeClient, clock: FakeClock
) -> None:
    dead_url = f"http://127.0.0.1:{free_port()}"
    sick = serve(lambda _: problem(503, "overloaded"))
    healthy = serve(lambda r: Reply(body=batch_body(int(r.path.rsplit("/", 1)[1]))))
    client = make_client([dead_url, sick.url, healthy.url])
    numbers = [client.batch("train", b, height=4, width=6).number for b in range(6)]
    assert numbers == list(range(6))
    assert clock.sleeps == []  # a healthy replica was always there
    assert len(sick.requests) == 1  # then out of rotation
    assert client.replicas.healthy() == [False, False, True]


def test_body_cut_short_is_retried(serve: Serve, make_client: MakeClient, clock: FakeClock) -> None:
    body = batch_body(3)
    server = serve(scripted(Reply(body=body, send=len(body) // 2), Reply(body=body)))
    batch = make_client(server.url).batch("train", 3, height=4, width=6)
    expected, _ = wire.decode(body)
    np.testing.assert_array_equal(batch.image, expected["image"])
    assert len(server.requests) == 2
    assert len(clock.sleeps) == 1


def test_keep_alive_connection_is_reused(serve: Serve, make_client: MakeClient) -> None:
    server = serve(lambda _: json_reply(DATASET))
    client = make_client(server.url)
    for _ in range(3):
        client.dataset()
    assert len({r.client_port for r in server.requests}) == 1


def test_stale_keep_alive_is_replaced_silently(
    serve: Serve, make_client: MakeClient, clock: FakeClock
) -> None:
    server = serve(
        lambda _: Reply(200, b"[]", {"Content-Type": "application/json"}, close_after=True)
    )
    client = make_client(server.url)
    assert client.classes() == []
    assert client.classes() == []
    assert clock.sleeps == []
    assert client.replicas.healthy() == [True]


def test_many_stale_keep_alives_cost_no_backoff(
    serve: Serve, make_client: MakeClient, clock: FakeClock
) -> None:
    """Idle connections the server closed meanwhile are all dropped, none waited for."""
    together = threading.Barrier(3, timeout=10)

    def answer(_: Request) -> Reply:
        if len(server.requests) <= 3:
            together.wait()  # three requests in flight at once: three connections
        return Reply(200, b"[]", {"Content-Type": "application/json"}, close_after=True)

    server = serve(answer)
    client = make_client(server.url)
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(lambda _: client.classes(), range(3))) == [[], [], []]
    assert len({r.client_port for r in server.requests}) == 3
    assert client.classes() == []
    assert clock.sleeps == []
    assert client.replicas.healthy() == [True]


def test_batch_arrays_view_a_pooled_buffer(serve: Serve, make_client: MakeClient) -> None:
    server = serve(lambda _: Reply(body=batch_body(5)))
    client = make_client(server.url)
    batch = client.batch("train", 5, height=4, width=6, seed=1)
    assert server.requests[0].query == BatchRequest(4, 6, seed=1).query("batch")
    assert server.requests[0].query["seed"] == "1"
    assert batch.number == 5
    assert batch.index.tolist() == [10, 11]
    assert client.pool.in_use() == 1
    assert not batch.image.flags.owndata
    del batch
    assert client.pool.in_use() == 0


def test_malformed_batch_is_a_protocol_error(serve: Serve, make_client: MakeClient) -> None:
    server = serve(lambda _: Reply(body=b"\x10" + bytes(20)))
    with pytest.raises(ProtocolError):
        make_client(server.url).batch("train", 0, height=4, width=6)
    assert len(server.requests) == 1


def _stream(frames: range, cut_after: int | None = None) -> Reply:
    body = b"".join(wire.frame_prefix(len(b)) + b for b in map(batch_body, frames))
    send = None
    if cut_after is not None:  # a few bytes into the frame after `cut_after` whole ones
        send = sum(len(batch_body(b)) + 8 for b in frames[:cut_after]) + 20
    return Reply(body=body, chunked=True, send=send)


def test_stream_resumes_after_the_last_whole_batch(
    serve: Serve, make_client: MakeClient, clock: FakeClock
) -> None:
    def answer(request: Request) -> Reply:
        if request.path == "/v1/splits/train":
            return json_reply({"name": "train", "size": 30, "usable": 30, "batches": 15})
        start, step = int(request.query["start"]), int(request.query["step"])
        frames = range(start, int(request.query["stop"]), step)
        return _stream(frames, cut_after=2 if start == 1 else None)

    server = serve(answer)
    batches = make_client(server.url).stream_epoch(
        "train", 0, start=1, stop=12, step=2, height=4, width=6
    )
    assert [b.number for b in batches] == [1, 3, 5, 7, 9, 11]
    streams = [r for r in server.requests if "/epochs/" in r.path]
    assert [r.query["start"] for r in streams] == ["1", "5"]
    assert streams[0].path == "/v1/splits/train/epochs/0"
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("3", 3.0),
        (" 12 ", 12.0),
        ("soon", None),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
    ],
)
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header) == expected

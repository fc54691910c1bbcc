"""The streams of an epoch on different server worker processes (``Segserve-Worker``).

The scripted server plays a server of two worker processes: each new
connection is "accepted" by the worker a script names, and every reply
carries that worker's id, as segserve's do. A client that reused its idle
keep-alive connections blindly would put both streams on the worker that
answered its first requests.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator

import pytest
from segserve_client import SegClient
from segserve_client.protocol import wire
from segserve_client.transport import PLACEMENT_TRIES

from tests.client.conftest import batch_body
from tests.client.fakeserver import FakeServer, Reply, Request, json_reply

Serve = Callable[[Callable[[Request], Reply]], FakeServer]
MakeClient = Callable[..., SegClient]
BATCHES = 8


class Workers:
    """Which worker each connection (client port) reached, the next ones from ``script``."""

    def __init__(self, script: Iterator[str], count: int | None) -> None:
        self._script = script
        self.count = count
        self.of: dict[int, str] = {}
        self._lock = threading.Lock()

    def headers(self, request: Request) -> dict[str, str]:
        with self._lock:
            if request.client_port not in self.of:
                self.of[request.client_port] = next(self._script)
            worker = self.of[request.client_port]
        headers = {"Segserve-Worker": worker}
        if self.count is not None:
            headers["Segserve-Workers"] = str(self.count)
        return headers


def answer_with(workers: Workers | None) -> Callable[[Request], Reply]:
    def answer(request: Request) -> Reply:
        headers = {} if workers is None else workers.headers(request)
        if request.path == "/healthz":
            return json_reply({"status": "ok"}, 200, **headers)
        if request.path == "/v1/splits/train":
            info = {"name": "train", "size": 2 * BATCHES, "usable": 2 * BATCHES}
            return json_reply({**info, "batches": BATCHES}, 200, **headers)
        start, stop, step = (int(request.query[k]) for k in ("start", "stop", "step"))
        frames = range(start, stop, step)
        body = b"".join(wire.frame_prefix(len(b)) + b for b in map(batch_body, frames))
        return Reply(body=body, headers=headers)

    return answer


def streams(server: FakeServer) -> list[Request]:
    with server.lock:
        return [r for r in server.requests if "/epochs/" in r.path]


def probes(server: FakeServer) -> int:
    return server.paths().count("/healthz")


def epoch(client: SegClient, number: int, connections: int = 2) -> list[int]:
    batches = client.stream_epoch("train", number, height=4, width=6, connections=connections)
    numbers = []
    for batch in batches:
        with batch:
            numbers.append(batch.number)
    return numbers


def test_the_two_streams_go_to_two_workers(serve: Serve, make_client: MakeClient) -> None:
    # the first three connections reach worker a, then b
    workers = Workers(itertools.chain("aaa", itertools.repeat("b")), 2)
    server = serve(answer_with(workers))
    client = make_client(server.url)
    assert epoch(client, 0) == list(range(BATCHES))
    first = streams(server)
    assert sorted(workers.of[r.client_port] for r in first) == ["a", "b"]
    assert probes(server) == 3  # two new connections reached a, the third b
    # the next epoch reuses the placed connections: no probe, one stream on each worker
    assert epoch(client, 1) == list(range(BATCHES))
    second = streams(server)[2:]
    assert sorted(workers.of[r.client_port] for r in second) == ["a", "b"]
    assert probes(server) == 3


def test_a_stream_on_the_busy_worker_when_no_other_answers(
    serve: Serve, make_client: MakeClient
) -> None:
    workers = Workers(itertools.repeat("a"), 2)  # says two workers, one accepts everything
    server = serve(answer_with(workers))
    client = make_client(server.url)
    assert epoch(client, 0) == list(range(BATCHES))
    assert probes(server) == PLACEMENT_TRIES  # bounded, then the stream goes where it can


@pytest.mark.parametrize(
    ("workers", "expected"),
    [
        (None, 0),  # a server that does not say: nothing to place by
        (Workers(itertools.repeat("a"), 1), 0),  # one worker: nowhere else to go
        (Workers(itertools.repeat("a"), None), PLACEMENT_TRIES),  # no count: looks, bounded
    ],
    ids=["no-header", "one-worker", "no-count"],
)
def test_probes_only_when_another_worker_may_be_found(
    serve: Serve, make_client: MakeClient, workers: Workers | None, expected: int
) -> None:
    server = serve(answer_with(workers))
    client = make_client(server.url)
    assert epoch(client, 0) == list(range(BATCHES))
    assert probes(server) == expected
    assert len(streams(server)) == 2


def test_one_connection_needs_no_placement(serve: Serve, make_client: MakeClient) -> None:
    server = serve(answer_with(Workers(itertools.repeat("a"), 2)))
    assert epoch(make_client(server.url), 0, connections=1) == list(range(BATCHES))
    assert probes(server) == 0


@pytest.mark.parametrize(("count", "expected"), [(3, 3), (1, 1), (None, 1)])
def test_connections_none_opens_one_stream_per_worker_process(
    serve: Serve, make_client: MakeClient, count: int | None, expected: int
) -> None:
    workers = Workers(itertools.cycle("abc"), count)
    server = serve(answer_with(workers))
    client = make_client(server.url)
    assert epoch(client, 0, connections=None) == list(range(BATCHES))  # type: ignore[arg-type]
    assert client.worker_processes() == expected
    assert len(streams(server)) == expected
    assert len({workers.of[r.client_port] for r in streams(server)}) == expected


def test_connections_none_counts_the_workers_of_every_replica(
    serve: Serve, make_client: MakeClient
) -> None:
    first = serve(answer_with(Workers(itertools.cycle("ab"), 2)))
    second = serve(answer_with(Workers(itertools.cycle("cd"), 2)))
    client = make_client([first.url, second.url])
    assert epoch(client, 0, connections=None) == list(range(BATCHES))  # type: ignore[arg-type]
    # the first replica told its count when asked the epoch's length, the second
    # only once it sent a stream: three streams, then four for the next epoch
    assert len(streams(first)) + len(streams(second)) == 3
    assert client.worker_processes() == 4
    assert epoch(client, 1, connections=None) == list(range(BATCHES))  # type: ignore[arg-type]
    assert len(streams(first)) + len(streams(second)) == 3 + 4
    assert len(streams(first)) >= 2
    assert len(streams(second)) >= 2

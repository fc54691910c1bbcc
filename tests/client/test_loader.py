"""Epochs from live servers: coverage, sharding, prefetch, buffer lifetime, failover."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from segserve_client import AuthenticationError, Batch, BatchLoader, BatchRequest, SegClient
from segserve_client.loader import prefetched
from segserve_client.normalize import normalize
from segserve_client.protocol.encoding import Encoding

from tests.client.conftest import FakeClock
from tests.client.live import CROP, TRAIN_SIZE, TRAIN_SMALL, LiveServer, start_server

MakeClient = Callable[..., SegClient]
HEIGHT, WIDTH = CROP
Array = npt.NDArray[Any]
USABLE = list(range(TRAIN_SMALL, TRAIN_SIZE))  # tiny_voc puts the small samples first


def _indices(batches: list[Batch]) -> list[int]:
    return [int(i) for b in batches for i in b.index]


def _same(a: Batch, b: Batch) -> bool:
    return a.metadata == b.metadata and all(np.array_equal(a[k], b[k]) for k in a)


def test_epoch_covers_every_usable_sample_once(live: LiveServer, make_client: MakeClient) -> None:
    client = make_client(live.url)
    batches = list(client.iter_epoch("train", 0, 4, HEIGHT, WIDTH))
    assert [b.number for b in batches] == list(range(len(USABLE) // 4))
    assert sorted(_indices(batches)) == USABLE
    assert _indices(batches) != USABLE  # shuffled
    assert batches[0].image.shape == (4, HEIGHT, WIDTH, 3)


def test_epochs_differ_and_repeat(live: LiveServer, make_client: MakeClient) -> None:
    client = make_client(live.url)
    epoch = [_indices(list(client.iter_epoch("train", e, 4, HEIGHT, WIDTH))) for e in (0, 1, 0)]
    assert epoch[0] != epoch[1]
    assert epoch[0] == epoch[2]


@pytest.mark.parametrize("world_size", [2, 3, 5])
def test_ranks_cover_every_batch_once(
    live: LiveServer, make_client: MakeClient, world_size: int
) -> None:
    client = make_client(live.url)
    whole = list(client.iter_epoch("train", 0, 2, HEIGHT, WIDTH))
    shards = [
        list(client.iter_epoch("train", 0, 2, HEIGHT, WIDTH, rank=r, world_size=world_size))
        for r in range(world_size)
    ]
    merged = sorted((b for shard in shards for b in shard), key=lambda b: b.number)
    assert [b.number for b in shards[1]] == list(range(1, len(whole), world_size))
    assert len(merged) == len(whole)
    assert all(_same(a, b) for a, b in zip(merged, whole, strict=True))


def test_stream_equals_batch_requests(live: LiveServer, make_client: MakeClient) -> None:
    client = make_client(live.url)
    request = BatchRequest(HEIGHT, WIDTH, batch_size=4, flip=True)
    streamed = list(client.stream_epoch("train", 3, request))
    fetched = [client.batch("train", n, request, epoch=3) for n in range(len(streamed))]
    keywords = client.stream_epoch("train", 3, height=HEIGHT, width=WIDTH, batch_size=4, flip=True)
    assert all(_same(a, b) for a, b in zip(keywords, streamed, strict=True))
    assert len(streamed) == len(USABLE) // 4
    assert all(_same(a, b) for a, b in zip(streamed, fetched, strict=True))


@pytest.mark.parametrize("connections", [2, 3, 50])
@pytest.mark.parametrize(("start", "step"), [(0, 1), (1, 2)])
def test_a_stream_over_several_connections_equals_one(
    live: LiveServer, make_client: MakeClient, connections: int, start: int, step: int
) -> None:
    client = make_client(live.url)
    request = BatchRequest(HEIGHT, WIDTH, batch_size=2, flip=True)
    one = list(client.stream_epoch("train", 2, request, start=start, step=step))
    several = client.stream_epoch(
        "train", 2, request, start=start, step=step, connections=connections
    )
    got = list(several)
    assert [b.number for b in got] == list(range(start, len(USABLE) // 2, step))
    assert all(_same(a, b) for a, b in zip(got, one, strict=True))


@pytest.mark.parametrize("connections", [1, 2])
def test_map_epoch_transforms_each_batch_in_order(
    live: LiveServer, make_client: MakeClient, connections: int
) -> None:
    client = make_client(live.url)
    request = BatchRequest(HEIGHT, WIDTH, batch_size=2, flip=True)

    def labels_sum(batch: Batch) -> tuple[int, int]:
        with batch:
            return batch.number, int(batch.label.sum(dtype=np.int64))

    mapped = list(client.map_epoch("train", 1, labels_sum, request, connections=connections))
    expected = client.loader("train", request.replace(epoch=1)).map(labels_sum)
    assert mapped == list(expected)
    assert client.session.pool.in_use() == 0


def test_a_failing_transform_raises_and_gives_its_batch_back(
    live: LiveServer, make_client: MakeClient
) -> None:
    client = make_client(live.url)
    request = BatchRequest(HEIGHT, WIDTH, batch_size=2)

    def fail_on_the_second(batch: Batch) -> Batch:
        if batch.number == 1:
            raise KeyError("no")
        return batch

    stream = client.map_epoch("train", 0, fail_on_the_second, request, prefetch=1)
    first = next(stream)
    with pytest.raises(KeyError):
        next(stream)
    first.release()
    assert client.session.pool.in_use() == 0


def test_map_epoch_needs_a_decoding_thread(live: LiveServer, make_client: MakeClient) -> None:
    client = make_client(live.url)
    with pytest.raises(ValueError, match="prefetch must be >= 1"):
        client.map_epoch("train", 0, lambda b: b, BatchRequest(HEIGHT, WIDTH), prefetch=0)


@pytest.mark.parametrize("connections", [1, 2])
def test_leaving_a_stream_early_gives_back_the_frames_read_ahead(
    live: LiveServer, make_client: MakeClient, connections: int
) -> None:
    client = make_client(live.url)
    request = BatchRequest(HEIGHT, WIDTH, batch_size=2)
    stream = client.stream_epoch("train", 0, request, connections=connections)
    first = next(stream)
    deadline = time.monotonic() + 10.0  # frames are read ahead while the consumer waits
    while client.session.pool.in_use() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.session.pool.in_use() > 1
    stream.close()  # type: ignore[attr-defined]
    assert client.session.pool.in_use() == 1  # only the batch in hand
    first.release()
    assert client.session.pool.in_use() == 0
    assert _same(first, client.batch("train", 0, request))


@pytest.mark.parametrize("connections", [1, 2])
def test_a_stream_keeps_no_batch_the_consumer_has_dropped(
    live: LiveServer, make_client: MakeClient, connections: int
) -> None:
    client = make_client(live.url)
    request = BatchRequest(HEIGHT, WIDTH, batch_size=2)
    stream = client.stream_epoch("train", 0, request, connections=connections)
    gone = weakref.ref(next(stream))  # dropped at once, never released
    second = next(stream)
    assert gone() is None
    assert second.lease is not None
    assert not second.lease.released


def test_a_stream_needs_a_connection(live: LiveServer, make_client: MakeClient) -> None:
    client = make_client(live.url)
    with pytest.raises(ValueError, match="connections must be >= 1"):
        list(client.stream_epoch("train", 0, BatchRequest(HEIGHT, WIDTH), connections=0))


@pytest.mark.parametrize(
    ("encoding", "streamed"), [("raw", False), ("lossless", False), ("lossless", True)]
)
def test_held_arrays_never_change_while_released_buffers_are_reused(
    live: LiveServer, make_client: MakeClient, encoding: Encoding, streamed: bool
) -> None:
    """Arrays of early batches are held (not their batches) while two more epochs come in.

    Every other batch is released, so the pool does reuse memory: the held
    arrays stay as they were received, the released memory is leased again.
    Encoded bodies are decoded into leased memory too; stream frames are read into it.
    """
    client = make_client(live.url, buffers=2)
    request = BatchRequest(HEIGHT, WIDTH, batch_size=2, encoding=encoding)
    held: list[tuple[Array, Array]] = []
    released: list[Array] = []
    reused = 0
    for epoch in range(3):
        if streamed:
            batches = client.stream_epoch("train", epoch, request)
        else:
            batches = iter(client.loader("train", request.replace(epoch=epoch), prefetch=2))
        for batch in batches:
            assert batch.lease is not None
            memory = batch.lease.arrays
            reused += any(np.shares_memory(m, r) for m in memory for r in released)
            assert not any(np.shares_memory(m, h[0]) for m in memory for h in held)
            if batch.number % 2 == 0:
                for view in (batch.image[0, ::2], batch.label[1]):  # views; the batch is dropped
                    held.append((view, view.copy()))
            else:
                released += memory
                batch.release()
    assert reused > 0  # the check above could have failed: memory does come back
    for view, snapshot in held:
        np.testing.assert_array_equal(view, snapshot)


def test_recycling_loader_releases_the_previous_batch_on_next(
    live: LiveServer, make_client: MakeClient
) -> None:
    client = make_client(live.url, buffers=2)
    request = BatchRequest(HEIGHT, WIDTH, batch_size=2)
    batches = iter(client.loader("train", request, prefetch=2, recycle=True))
    first = next(batches)
    assert first.lease is not None
    assert not first.lease.released
    second = next(batches)
    assert first.lease.released
    assert second.lease is not None
    assert not second.lease.released
    rest = list(batches)
    assert second.lease.released
    assert all(b.lease is not None and b.lease.released for b in rest)
    assert client.pool.free == 2


def test_float32_delivery_equals_client_normalisation(
    live: LiveServer, make_client: MakeClient
) -> None:
    client = make_client(live.url)
    request = BatchRequest(HEIGHT, WIDTH, batch_size=4)
    raw = client.batch("train", 1, request)
    server = client.batch("train", 1, request, dtype="float32")
    assert server.image.shape == (4, 3, HEIGHT, WIDTH)
    np.testing.assert_allclose(normalize(raw.image), server.image, rtol=0, atol=1e-6)


def test_loader_asks_the_split_for_its_length(live: LiveServer, make_client: MakeClient) -> None:
    request = BatchRequest(HEIGHT, WIDTH, batch_size=5)
    loader = BatchLoader(make_client(live.url), "train", request)
    assert len(loader) == len(USABLE) // 5
    loader = BatchLoader(make_client(live.url), "train", request.replace(drop_last=False))
    assert len(loader) == -(-len(USABLE) // 5)
    assert len(list(loader)[-1].index) == len(USABLE) % 5


def test_prefetched_keeps_order() -> None:
    assert list(prefetched(lambda i: i * i, range(20), depth=3)) == [i * i for i in range(20)]
    assert list(prefetched(lambda i: -i, range(4), depth=0)) == [0, -1, -2, -3]


@pytest.mark.slow
def test_epoch_survives_a_killed_replica(
    live_pair: tuple[LiveServer, LiveServer], make_client: MakeClient, clock: FakeClock
) -> None:
    a, b = live_pair
    client = make_client([a.url, b.url], backoff=60.0)
    batches: list[Batch] = []
    for batch in client.iter_epoch("train", 0, 2, HEIGHT, WIDTH, prefetch=2):
        batches.append(batch)
        if len(batches) == 3:
            a.kill()
    assert a.process.returncode is not None
    assert [x.number for x in batches] == list(range(len(USABLE) // 2))
    assert sorted(_indices(batches)) == USABLE
    assert client.replicas.healthy() == [False, True]
    assert clock.sleeps == []  # the other replica was always there
    survivor = make_client(b.url)
    for x in batches:
        again = survivor.batch("train", x.number, height=HEIGHT, width=WIDTH, batch_size=2)
        assert _same(x, again)


@pytest.mark.slow
def test_token_is_required_and_accepted(voc_root: Path, tmp_path: Path) -> None:
    with (
        start_server(voc_root, tmp_path / "cache", token="s3cret") as server,
        SegClient(server.url) as anonymous,
        SegClient(server.url, "s3cret") as member,
    ):
        with pytest.raises(AuthenticationError) as caught:
            anonymous.dataset()
        assert caught.value.status == 401
        assert member.dataset()["num_classes"] == 21
        batch = member.batch("train", 0, height=HEIGHT, width=WIDTH, batch_size=4)
        assert batch.index.size == 4

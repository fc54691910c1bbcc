"""The receive-buffer pool reuses a buffer only once nothing refers to it."""

from __future__ import annotations

import numpy as np
import pytest
from segserve_client.batch import Batch
from segserve_client.buffers import BufferPool
from segserve_client.protocol import wire


def _body() -> bytes:
    tensors = {"image": np.arange(24, dtype=np.uint8).reshape(1, 2, 4, 3), "index": np.array([7])}
    return wire.encode(tensors, {"batch": "2"}).tobytes()


def _fill(pool: BufferPool, body: bytes) -> Batch:
    buffer = pool.acquire(len(body))
    buffer[:] = np.frombuffer(body, np.uint8)
    return Batch.decode(buffer)


def test_buffer_comes_back_only_when_unreferenced() -> None:
    pool = BufferPool(capacity=1)
    body = _body()
    batch = _fill(pool, body)
    pixel_row = batch.image[0, 1]  # a view of a view keeps the buffer busy too
    del batch
    assert pool.in_use() == 1
    other = pool.acquire(len(body))  # pool full and busy: a fresh, unpooled buffer
    other[:] = 0
    assert pixel_row.tolist() == [[12, 13, 14], [15, 16, 17], [18, 19, 20], [21, 22, 23]]
    del pixel_row
    assert pool.in_use() == 0
    again = _fill(pool, body)
    assert pool.in_use() == 1
    assert pool.size == 1
    assert again.number == 2


def test_small_free_buffer_makes_room_for_a_larger_one() -> None:
    pool = BufferPool(capacity=1)
    first = pool.acquire(10)
    del first
    big = pool.acquire(1000)
    assert big.size == 1000
    assert pool.size == 1
    assert pool.in_use() == 1


def test_capacity_zero_never_pools() -> None:
    pool = BufferPool(capacity=0)
    assert pool.acquire(16).size == 16
    assert pool.size == 0
    with pytest.raises(ValueError, match="capacity"):
        BufferPool(capacity=-1)


def test_float32_views_a_pooled_buffer() -> None:
    pool = BufferPool(capacity=1)
    array = pool.float32((2, 3, 4))
    assert array.dtype == np.float32
    assert array.shape == (2, 3, 4)
    assert array.flags.writeable
    assert array.base is not None
    assert pool.in_use() == 1
    del array
    assert pool.in_use() == 0
    assert pool.acquire(96).size == 96
    assert pool.size == 1


def test_smallest_fitting_buffer_is_reused() -> None:
    pool = BufferPool(capacity=3)
    buffers = [pool.acquire(n) for n in (300, 100, 200)]
    bases = [id(b.base) for b in buffers]  # ids: a reference would keep them busy
    del buffers
    label = pool.acquire(150)
    image = pool.acquire(250)
    assert id(label.base) == bases[2]
    assert id(image.base) == bases[0]

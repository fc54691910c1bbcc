"""Receive buffers are leased: reused only after an explicit release, never while held;
the adapters' output arrays only once nothing refers to them."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from segserve_client import Batch
from segserve_client.buffers import ArrayPool, BatchLease, BufferPool
from segserve_client.protocol import wire


def _body() -> bytes:
    tensors = {"image": np.arange(24, dtype=np.uint8).reshape(1, 2, 4, 3), "index": np.array([7])}
    return wire.encode(tensors, {"batch": "2"}).tobytes()


def _fill(pool: BufferPool, body: bytes) -> Batch:
    lease = BatchLease(pool)
    memory = lease.take(len(body))
    memory[:] = np.frombuffer(body, np.uint8)
    return Batch.decode(memory, lease.target, lease)


def test_released_buffer_is_reused() -> None:
    pool = BufferPool(capacity=1)
    first = pool.lease(100)
    memory = first.array
    first.release()
    assert first.released
    assert pool.free == 1
    again = pool.lease(80)
    assert np.shares_memory(again.array, memory)
    assert again.array.size == 80
    assert pool.free == 0


def test_unreleased_buffer_is_never_handed_out_again() -> None:
    """Even when nothing refers to it any more: only a release returns a buffer."""
    pool = BufferPool(capacity=4)
    body = _body()
    batch = _fill(pool, body)
    pixel_row = batch.image[0, 1]  # a view of a view
    del batch  # dropped, not released
    for _ in range(6):
        other = pool.lease(len(body))
        assert not np.shares_memory(other.array, pixel_row)
        other.array[:] = 0
        other.release()
    assert pixel_row.tolist() == [[12, 13, 14], [15, 16, 17], [18, 19, 20], [21, 22, 23]]


def test_batch_context_manager_releases() -> None:
    pool = BufferPool(capacity=2)
    body = _body()
    with _fill(pool, body) as batch:
        assert batch.number == 2
        assert pool.in_use() == 1
        lease = batch.lease
    assert lease is not None
    assert lease.released
    assert pool.in_use() == 0
    batch.release()  # idempotent
    assert pool.free == 1


def test_pool_keeps_the_largest_free_buffers() -> None:
    pool = BufferPool(capacity=2)
    leases = [pool.lease(n) for n in (10, 1000, 500)]
    for lease in leases:
        lease.release()
    assert pool.free == 2
    assert pool.lease(900).array.base is not None
    assert pool.lease(400).array.size == 400
    assert pool.free == 0


def test_smallest_fitting_free_buffer_is_leased() -> None:
    pool = BufferPool(capacity=3)
    leases = [pool.lease(n) for n in (300, 100, 200)]
    memories = [lease.array for lease in leases]
    for lease in leases:
        lease.release()
    label, image = pool.lease(150), pool.lease(250)
    assert np.shares_memory(label.array, memories[2])
    assert np.shares_memory(image.array, memories[0])


def test_capacity_zero_never_pools() -> None:
    pool = BufferPool(capacity=0)
    lease = pool.lease(16)
    assert lease.array.size == 16
    lease.release()
    assert pool.free == 0
    with pytest.raises(ValueError, match="capacity"):
        BufferPool(capacity=-1)


def test_batch_without_lease_releases_nothing() -> None:
    batch = Batch.decode(_body())
    batch.release()
    assert batch.lease is None
    assert batch.index.tolist() == [7]


def test_a_batch_lease_releases_all_its_memory_together() -> None:
    pool = BufferPool(capacity=4)
    lease = BatchLease(pool)
    body = lease.take(64)
    target = lease.target("image", (2, 4, 3))
    assert target.shape == (2, 4, 3)
    assert lease.array is not target
    assert pool.in_use() == 2
    assert not lease.released
    lease.release()
    assert lease.released
    assert pool.free == 2
    assert len(lease.arrays) == 2
    assert np.shares_memory(pool.lease(64).array, body)  # only the body's buffer fits


def test_array_pool_reuses_an_array_once_it_is_freed() -> None:
    pool = ArrayPool(capacity=2)
    first = pool.empty((2, 3), np.float32)
    address = first.ctypes.data
    del first
    gc.collect()
    assert pool.free == 1
    again = pool.empty((2, 3), np.float32)
    assert again.ctypes.data == address
    assert pool.free == 0


def test_array_pool_never_hands_out_an_array_still_referred_to() -> None:
    """Views, and arrays only a view keeps alive, keep their memory out of the pool."""
    pool = ArrayPool(capacity=4)
    held = pool.empty((4,), np.float32)
    held[:] = 1.0
    view = pool.empty((4,), np.float32)[1:]  # the handed array lives on as view.base
    view[:] = 2.0
    gc.collect()
    others = [pool.empty((4,), np.float32) for _ in range(3)]
    for other in others:
        other[:] = -1.0
        assert not np.shares_memory(other, held)
        assert not np.shares_memory(other, view)
    assert held.tolist() == [1.0] * 4
    assert view.tolist() == [2.0] * 3


def test_array_pool_keys_on_shape_and_dtype_and_keeps_capacity() -> None:
    pool = ArrayPool(capacity=1)
    a, b = pool.empty((3,), np.float32), pool.empty((3,), np.float32)
    c = pool.empty((3,), np.uint8)
    addresses = {a.ctypes.data, b.ctypes.data}
    del a, b, c
    gc.collect()
    assert pool.free == 2  # one float32 (3,), one uint8 (3,)
    assert pool.empty((3,), np.float32).ctypes.data in addresses
    assert pool.empty((2,), np.float32).size == 2  # another shape: a new array


def test_array_pool_keeps_memory_that_only_a_view_of_a_view_refers_to() -> None:
    pool = ArrayPool(capacity=4)
    kept = pool.empty((2, 3, 4), np.float32).transpose(1, 0, 2)[1:, :, ::2]
    kept[:] = 5.0
    gc.collect()
    for _ in range(3):
        other = pool.empty((2, 3, 4), np.float32)
        other[:] = -1.0
        assert not np.shares_memory(other, kept)
    assert (kept == 5.0).all()

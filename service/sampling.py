"""Which samples an epoch uses, in which order, and each sample's random numbers.

Everything here is a pure function of its arguments: the same (split sizes,
crop, seed, epoch) gives the same order and the same per-sample numbers in
any process, on any machine, with any numpy version. Randomness therefore
comes from hashing, not from a generator's stream: a splitmix64 mixer applied
to uint64 arrays (array arithmetic wraps modulo 2**64 without warnings).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from service.errors import NotFoundError, NoUsableSampleError
from service.params import CropSpec
from service.source import SplitSource

I64Array = npt.NDArray[np.int64]
U64Array = npt.NDArray[np.uint64]
F64Array = npt.NDArray[np.float64]

_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)
_M1: Final = np.uint64(0xBF58476D1CE4E5B9)
_M2: Final = np.uint64(0x94D049BB133111EB)
_S30: Final = np.uint64(30)
_S27: Final = np.uint64(27)
_S31: Final = np.uint64(31)
_S11: Final = np.uint64(11)

# Independent streams of the same (seed, epoch): the epoch's order, each
# sample's augmentation numbers, the sample a crop request picks.
STREAM_ORDER: Final = 1
STREAM_SAMPLE: Final = 2
STREAM_PICK: Final = 3

_CACHE_SIZE: Final = 64

V = TypeVar("V")


class _LRU(Generic[V]):
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_usable_cache: _LRU[I64Array] = _LRU(_CACHE_SIZE)
_order_cache: _LRU[I64Array] = _LRU(_CACHE_SIZE)


def mix64(values: U64Array) -> U64Array:
    """The splitmix64 finaliser, elementwise: a bijection of uint64 with good avalanche."""
    z = values.astype(np.uint64, copy=True)
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def _stream_base(seed: int, epoch: int, stream: int) -> U64Array:
    """One uint64 (as a 1-element array) identifying (seed, epoch, stream)."""
    h = mix64(np.array([seed], dtype=np.uint64) + np.array([stream], dtype=np.uint64) * _GOLDEN)
    return mix64(h ^ np.array([epoch], dtype=np.uint64))


def hash_counters(seed: int, epoch: int, stream: int, counters: I64Array) -> U64Array:
    """One well-mixed uint64 per counter (a non-negative int64), for (seed, epoch, stream)."""
    base = _stream_base(seed, epoch, stream)
    return mix64(base + (counters.astype(np.uint64) + np.uint64(1)) * _GOLDEN)


def to_unit(values: U64Array) -> F64Array:
    """Map uint64 values to floats in [0, 1) using their top 53 bits."""
    return (values >> _S11).astype(np.float64) * (2.0**-53)


def sample_uniforms_many(seed: int, epoch: int, indices: I64Array, k: int) -> F64Array:
    """``(len(indices), k)`` floats in [0, 1): the random numbers of each sample in an epoch."""
    keys = hash_counters(seed, epoch, STREAM_SAMPLE, np.asarray(indices, dtype=np.int64))
    steps = (np.arange(1, k + 1, dtype=np.uint64) * _GOLDEN)[np.newaxis, :]
    grid: U64Array = keys[:, np.newaxis] + steps
    return to_unit(mix64(grid))


def sample_uniforms(seed: int, epoch: int, index: int, k: int) -> F64Array:
    """``k`` floats in [0, 1): sample ``index``'s random numbers in (seed, epoch)."""
    uniforms = sample_uniforms_many(seed, epoch, np.array([index], dtype=np.int64), k)
    return uniforms.reshape(k)


def split_key(source: SplitSource) -> tuple[str, bytes]:
    """A stable cache key for a split: its name and a digest of its sample sizes."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.ascontiguousarray(source.heights, dtype=np.int32).tobytes())
    digest.update(np.ascontiguousarray(source.widths, dtype=np.int32).tobytes())
    return (source.name, digest.digest())


def _readonly(array: I64Array) -> I64Array:
    array.setflags(write=False)
    return array


def usable_indices(source: SplitSource, crop: CropSpec) -> I64Array:
    """Sample indices a crop may use, ascending (read-only).

    ``small=drop``: the chapter's filter, height >= crop height and width >=
    crop width; an empty result raises :class:`NoUsableSampleError`.
    ``small=pad``: every sample. ``crop_mode=full`` (whatever ``small``): the
    samples that fit the ``height`` x ``width`` canvas; none raises too.
    """
    full = crop.crop_mode == "full"
    key = (split_key(source), crop.height, crop.width, "full" if full else crop.small)
    cached = _usable_cache.get(key)
    if cached is not None:
        return cached
    heights = np.asarray(source.heights)
    widths = np.asarray(source.widths)
    if full:
        usable = np.flatnonzero((heights <= crop.height) & (widths <= crop.width))
        if usable.size == 0:
            raise _none_fits(source.name, crop, heights, widths)
    elif crop.small == "pad":
        usable = np.arange(len(heights), dtype=np.int64)
    else:
        usable = np.flatnonzero((heights >= crop.height) & (widths >= crop.width))
        if usable.size == 0:
            raise _no_usable(source.name, crop, heights, widths)
    usable = _readonly(usable.astype(np.int64, copy=False))
    _usable_cache.put(key, usable)
    return usable


def _no_usable(
    split: str, crop: CropSpec, heights: npt.NDArray[np.int32], widths: npt.NDArray[np.int32]
) -> NoUsableSampleError:
    """The error for a crop size that leaves nothing under ``small=drop``."""
    size = f"{crop.height} x {crop.width} (height x width)"
    wanted = f"no sample of split {split!r} is at least {size}"
    if heights.size == 0:
        return NoUsableSampleError("height", f"{wanted}: the split is empty")
    tallest = int(heights.max())
    if tallest < crop.height:
        name, hint = "height", f"the tallest is {tallest} high (width up to {int(widths.max())})"
    else:
        widest = int(widths[heights >= crop.height].max())
        name, hint = "width", f"those at least {crop.height} high are at most {widest} wide"
    return NoUsableSampleError(name, f"{wanted}; {hint}; use a smaller crop or small=pad")


def _none_fits(
    split: str, crop: CropSpec, heights: npt.NDArray[np.int32], widths: npt.NDArray[np.int32]
) -> NoUsableSampleError:
    """The error for a ``crop_mode=full`` canvas smaller than every sample of the split."""
    canvas = f"{crop.height} x {crop.width} (height x width)"
    wanted = f"crop_mode=full: no sample of split {split!r} fits a canvas of {canvas}"
    if heights.size == 0:
        return NoUsableSampleError("height", f"{wanted}: the split is empty")
    lowest = int(heights.min())
    if lowest > crop.height:
        name, hint = "height", f"the lowest image is {lowest} high"
    else:
        narrowest = int(widths[heights <= crop.height].min())
        name, hint = "width", f"those at most {crop.height} high are at least {narrowest} wide"
    return NoUsableSampleError(
        name, f"{wanted}; {hint}; use a canvas at least as large as the images"
    )


def epoch_order(usable: I64Array, seed: int, epoch: int, shuffle: bool) -> I64Array:
    """The epoch's sample order (read-only): ``usable`` permuted from (seed, epoch).

    Each sample's position comes from a hash of (seed, epoch, sample index), so
    the relative order of two samples does not depend on which others are usable.
    Without ``shuffle`` the order is ``usable`` itself.
    """
    usable = np.asarray(usable, dtype=np.int64)
    if not shuffle:
        return _readonly(usable.copy())
    digest = hashlib.blake2b(usable.tobytes(), digest_size=16).digest()
    key = (digest, seed, epoch)
    cached = _order_cache.get(key)
    if cached is not None:
        return cached
    keys = hash_counters(seed, epoch, STREAM_ORDER, usable)
    order = _readonly(usable[np.argsort(keys, kind="stable")])
    _order_cache.put(key, order)
    return order


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    """Batches in an epoch of ``n`` samples: floor with ``drop_last``, else ceiling."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return n // batch_size if drop_last else -(-n // batch_size)


def batch_indices(order: I64Array, batch_size: int, batch: int, drop_last: bool) -> I64Array:
    """Sample indices of batch number ``batch`` (a view of ``order``).

    Raises :class:`NotFoundError` naming the valid range when ``batch`` is out of it.
    """
    total = num_batches(len(order), batch_size, drop_last)
    if not 0 <= batch < total:
        if total == 0:
            valid = (
                f"this epoch has no batches ({len(order)} usable samples, "
                f"batch_size {batch_size}, drop_last {str(drop_last).lower()})"
            )
        else:
            valid = f"valid batches are 0..{total - 1}"
        raise NotFoundError(f"batch {batch} out of range: {valid}")
    return order[batch * batch_size : (batch + 1) * batch_size]


def pick_index(usable: I64Array, seed: int, epoch: int) -> int:
    """One usable sample index chosen from (seed, epoch), for a crop request without an index."""
    if len(usable) == 0:
        raise NotFoundError("the split has no samples")
    u = to_unit(hash_counters(seed, epoch, STREAM_PICK, np.zeros(1, dtype=np.int64)))[0]
    return int(usable[min(int(u * len(usable)), len(usable) - 1)])

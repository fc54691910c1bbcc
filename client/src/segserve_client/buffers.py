"""Receive buffers that are reused only once nothing refers to them.

Response bodies are read straight into a preallocated buffer and decoded
without copying, so the arrays a caller gets are views into that buffer.

Lifetime rule: a buffer is handed out again only when no object refers to it
any more -- no array decoded from it, no view of such an array, no tensor
wrapping one (``torch.from_numpy`` and ``mx.nd.from_numpy`` keep a reference).
Keep a batch as long as you like; holding many batches only makes the pool
allocate more buffers. The check counts CPython references, so code that keeps
a raw pointer without a reference (ctypes, an asynchronous C library) must copy.

Reusing buffers matters: reading a 40 MB body over loopback into a reused
buffer ran at 2.75 GB/s here, into a fresh ``np.empty`` at 2.3 GB/s, into a
fresh ``bytearray`` (zero-filled first) at 1.2 GB/s.
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
import numpy.typing as npt

Bytes = npt.NDArray[np.uint8]
F32Array = npt.NDArray[np.float32]

# References to a free pooled buffer as `_is_free` counts them: the pool's list
# and getrefcount's own argument.
_FREE_REFS = 2


class BufferPool:
    """A set of at most ``capacity`` byte buffers, each reused once unreferenced."""

    def __init__(self, capacity: int = 8) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._buffers: list[Bytes] = []
        self._lock = threading.Lock()

    def acquire(self, nbytes: int) -> Bytes:
        """A writable uint8 array of exactly ``nbytes`` bytes that nobody else refers to."""
        with self._lock:
            view = self._take(nbytes)
            if view is not None:
                return view
            buffer = np.empty(nbytes, dtype=np.uint8)
            if len(self._buffers) >= self.capacity:
                self._drop_one_free()
            if len(self._buffers) < self.capacity:
                self._buffers.append(buffer)
            return buffer[:nbytes]

    def float32(self, shape: tuple[int, ...]) -> F32Array:
        """A writable float32 array of ``shape`` over :meth:`acquire`'s bytes (same lifetime)."""
        array: F32Array = self.acquire(4 * math.prod(shape)).view(np.float32).reshape(shape)
        return array

    def uint8(self, shape: tuple[int, ...]) -> Bytes:
        """A writable uint8 array of ``shape`` over :meth:`acquire`'s bytes (same lifetime)."""
        return self.acquire(math.prod(shape)).reshape(shape)

    def decode_target(self, name: str, shape: tuple[int, ...]) -> Bytes:
        """Where an encoded tensor ``name`` is decoded to: a pooled uint8 array of ``shape``."""
        return self.uint8(shape)

    def _is_free(self, i: int) -> bool:
        """Whether nothing but the pool refers to buffer ``i`` (call with the lock held)."""
        return sys.getrefcount(self._buffers[i]) == _FREE_REFS

    def _take(self, nbytes: int) -> Bytes | None:
        """A view of the smallest free pooled buffer that is large enough, if there is one.

        Smallest, so that labels and images of different sizes keep to their own buffers.
        """
        best: int | None = None
        for i in range(len(self._buffers)):
            size = self._buffers[i].size
            fits = size >= nbytes and (best is None or size < self._buffers[best].size)
            if fits and self._is_free(i):
                best = i
        return None if best is None else self._buffers[best][:nbytes]

    def _drop_one_free(self) -> None:
        """Forget one free buffer (too small for the current size) so a new one can join."""
        for i in range(len(self._buffers)):
            if self._is_free(i):
                del self._buffers[i]
                return

    @property
    def size(self) -> int:
        """How many buffers the pool holds (free or in use)."""
        return len(self._buffers)

    def in_use(self) -> int:
        """How many pooled buffers something still refers to."""
        with self._lock:
            return sum(not self._is_free(i) for i in range(len(self._buffers)))

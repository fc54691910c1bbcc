"""A decoded batch: the tensors of API.md, read-only mapping style, plus metadata."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from segserve_client.buffers import BatchLease
from segserve_client.protocol import encoding, wire

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Batch(Mapping[str, Array]):
    """``image``, ``label``, ``index`` and ``rect`` arrays, and the body's ``metadata``.

    Arrays are views into the receive buffer. They stay valid as long as they
    are referenced, unless the batch is released: :meth:`release` (or leaving
    ``with batch:``) hands the buffer back for the next batch, after which
    nothing may read them (see :mod:`segserve_client.buffers`).
    """

    tensors: dict[str, Array]
    metadata: dict[str, str] = field(default_factory=dict)
    lease: BatchLease | None = field(default=None, compare=False, repr=False)

    @classmethod
    def decode(
        cls,
        body: bytes | bytearray | memoryview | npt.NDArray[np.uint8],
        allocate: encoding.Allocate | None = None,
        lease: BatchLease | None = None,
    ) -> Batch:
        """Parse a safetensors body (ValueError naming the tensor when malformed).

        Raw tensors are views of ``body`` (no copy); encoded ones (``lossless``,
        ``jpeg``) are decoded into arrays from ``allocate(name, shape)``, by
        default new ones. ``lease``: the lease of the memory of ``body`` and
        of what ``allocate`` gives, released by :meth:`release`.
        """
        tensors, metadata = wire.decode(body.data if isinstance(body, np.ndarray) else body)
        if allocate is None:
            return cls(encoding.decode_tensors(tensors, metadata), metadata, lease)
        return cls(encoding.decode_tensors(tensors, metadata, allocate), metadata, lease)

    def release(self) -> None:
        """Give the batch's memory back for reuse; the arrays must not be read afterwards."""
        if self.lease is not None:
            self.lease.release()

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __getitem__(self, name: str) -> Array:
        return self.tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    @property
    def image(self) -> Array:
        """uint8 (N, H, W, 3), or float32 normalised (N, 3, H, W)."""
        return self.tensors["image"]

    @property
    def label(self) -> npt.NDArray[np.uint8]:
        """uint8 (N, H, W) class indices, 255 = ignore unless ``void=background``."""
        return self.tensors["label"]

    @property
    def index(self) -> npt.NDArray[np.int64]:
        """int64 (N,) sample index within the split."""
        return self.tensors["index"]

    @property
    def rect(self) -> npt.NDArray[np.int32]:
        """int32 (N, 4): top, left, height, width of each crop in its source image."""
        return self.tensors["rect"]

    @property
    def number(self) -> int:
        """The batch number within its epoch (from the metadata; -1 when absent)."""
        return int(self.metadata.get("batch", -1))

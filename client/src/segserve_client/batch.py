"""A decoded batch: the tensors of API.md, read-only mapping style, plus metadata."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from segserve_client.protocol import encoding, wire

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Batch(Mapping[str, Array]):
    """``image``, ``label``, ``index`` and ``rect`` arrays, and the body's ``metadata``.

    Arrays are views into the receive buffer (see :mod:`segserve_client.buffers` for
    how long they stay valid: as long as they are referenced).
    """

    tensors: dict[str, Array]
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def decode(
        cls,
        body: bytes | bytearray | memoryview | npt.NDArray[np.uint8],
        allocate: encoding.Allocate | None = None,
    ) -> Batch:
        """Parse a safetensors body (ValueError naming the tensor when malformed).

        Raw tensors are views of ``body`` (no copy); encoded ones (``lossless``,
        ``jpeg``) are decoded into arrays from ``allocate(name, shape)``, by
        default new ones.
        """
        tensors, metadata = wire.decode(body.data if isinstance(body, np.ndarray) else body)
        if allocate is None:
            return cls(encoding.decode_tensors(tensors, metadata), metadata)
        return cls(encoding.decode_tensors(tensors, metadata, allocate), metadata)

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

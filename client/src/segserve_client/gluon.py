"""``load_data_voc`` for MXNet Gluon, fed by segserve instead of the local disk.

A drop-in for the chapter's ``load_data_voc(batch_size, crop_size)``: two
iterables of ``(X, Y)`` with X float32 (N, 3, H, W) normalised and Y float32
(N, H, W) class indices, ``last_batch='discard'``; the train iterable is
shuffled, the test one is not. Each new pass (``iter()``) is the next epoch.

``transport="uint8"`` fetches uint8 NHWC (a quarter of the bytes) and
normalises here, in the prefetch threads; ``"float32"`` has the server
normalise. Arrays reach MXNet through ``mx.nd.from_numpy(..., zero_copy=True)``:
no copy, and the NDArray keeps its buffer referenced (see :mod:`segserve_client.buffers`).
MXNet is imported here only, when an iterator is first iterated.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from segserve_client.batch import Batch
from segserve_client.buffers import BufferPool
from segserve_client.http import SegClient
from segserve_client.loader import BatchLoader
from segserve_client.normalize import labels_as_float, normalize

Transport = Literal["uint8", "float32"]
Void = Literal["background", "ignore"]
F32Array = npt.NDArray[np.float32]
DEFAULT_URL = "http://127.0.0.1:8000"


class VOCBatches:
    """``(X, Y)`` NDArray batches of one split; every ``iter()`` starts the next epoch."""

    def __init__(
        self,
        client: SegClient,
        split: str,
        *,
        batch_size: int,
        crop_size: tuple[int, int],
        shuffle: bool,
        seed: int = 0,
        void: Void = "background",
        transport: Transport = "uint8",
        prefetch: int = 2,
        first_epoch: int = 0,
    ) -> None:
        if transport not in ("uint8", "float32"):
            raise ValueError(f"transport must be 'uint8' or 'float32', got {transport!r}")
        self.client = client
        self.split = split
        self.batch_size = batch_size
        self.crop_size = crop_size
        self.shuffle = shuffle
        self.seed = seed
        self.void = void
        self.transport = transport
        self.prefetch = prefetch
        self.epoch = first_epoch
        self._outputs = BufferPool(capacity=2 * (prefetch + 2))
        self._len: int | None = None

    def loader(self, epoch: int) -> BatchLoader:
        """The :class:`BatchLoader` behind epoch ``epoch``."""
        height, width = self.crop_size
        return BatchLoader(
            self.client, self.split, height=height, width=width, batch_size=self.batch_size,
            epoch=epoch, seed=self.seed, prefetch=self.prefetch, shuffle=self.shuffle,
            drop_last=True, void=self.void, dtype=self.transport,
        )  # fmt: skip

    def __len__(self) -> int:
        if self._len is None:
            self._len = len(self.loader(self.epoch))
        return self._len

    def close(self) -> None:
        """Close the client's connections (shared by the train and test iterables)."""
        self.client.close()

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        import mxnet as mx

        loader = self.loader(self.epoch)
        self.epoch += 1
        for features, labels in loader.map(self._arrays):
            yield mx.nd.from_numpy(features), mx.nd.from_numpy(labels)

    def _arrays(self, batch: Batch) -> tuple[F32Array, F32Array]:
        """Normalised features and float labels, in pooled buffers (runs in a prefetch thread)."""
        labels = labels_as_float(batch.label, out=self._outputs.float32(batch.label.shape))
        if self.transport == "float32":
            return batch.image, labels
        n, h, w, _ = batch.image.shape
        return normalize(batch.image, out=self._outputs.float32((n, 3, h, w))), labels


def load_data_voc(
    batch_size: int,
    crop_size: tuple[int, int],
    url: str | list[str] | None = None,
    *,
    token: str | None = None,
    seed: int = 0,
    void: Void = "background",
    transport: Transport = "uint8",
    prefetch: int = 2,
) -> tuple[VOCBatches, VOCBatches]:
    """``(train_iter, test_iter)`` over the ``train`` and ``val`` splits, as the chapter's.

    ``url``: one segserve base URL or several replicas (default ``$SEGSERVE_URL``,
    else ``http://127.0.0.1:8000``). ``void="background"`` gives the chapter's
    labels (border pixels 0); ``"ignore"`` keeps 255 for a loss that skips it.
    """
    urls = url if url is not None else os.environ.get("SEGSERVE_URL", DEFAULT_URL)
    client = SegClient(urls, token=token)
    common: dict[str, Any] = {
        "batch_size": batch_size, "crop_size": crop_size, "seed": seed, "void": void,
        "transport": transport, "prefetch": prefetch,
    }  # fmt: skip
    return (
        VOCBatches(client, "train", shuffle=True, **common),
        VOCBatches(client, "val", shuffle=False, **common),
    )

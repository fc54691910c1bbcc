"""``RemoteVOCSegmentation``: a PyTorch ``IterableDataset`` of whole segserve batches.

Use it with ``DataLoader(dataset, batch_size=None, num_workers=m)``: the server
already batches. Batches are split so that every one is taken exactly once:
distributed rank r of k (``torch.distributed`` when initialised, or the
explicit ``rank``/``world_size``) and DataLoader worker w of m take the batch
numbers ``s, s + k*m, s + 2*k*m, ...`` with ``s = r*m + w``. Call
:meth:`set_epoch` before each epoch, as with ``DistributedSampler``.

Each item is a dict: ``image`` float32 (N, 3, H, W) normalised (or, with
``normalize=False``, the uint8 (N, H, W, 3) sent by the server), ``label``
uint8 (N, H, W) (``.long()`` it for ``CrossEntropyLoss(ignore_index=255)``),
``index`` int64 (N,), ``rect`` int32 (N, 4), ``batch`` the batch number.
Tensors share memory with the receive buffers (``torch.from_numpy``), which
stay untouched while a tensor refers to them (see :mod:`segserve_client.buffers`).
torch is imported here only.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from segserve_client.batch import Batch
from segserve_client.buffers import BufferPool
from segserve_client.http import SegClient
from segserve_client.loader import check_rank
from segserve_client.normalize import normalize as normalize_images
from segserve_client.request import BatchRequest
from segserve_client.session import Url


def worker_shard(rank: int, world_size: int, worker: int, num_workers: int) -> tuple[int, int]:
    """(first batch number, stride) of worker ``worker`` of rank ``rank``."""
    return rank * num_workers + worker, world_size * num_workers


def shard_numbers(
    num_batches: int, rank: int, world_size: int, worker: int, num_workers: int
) -> range:
    """The batch numbers that worker ``worker`` of rank ``rank`` takes."""
    first, stride = worker_shard(rank, world_size, worker, num_workers)
    return range(first, num_batches, stride)


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of ``torch.distributed`` when initialised, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class RemoteVOCSegmentation(IterableDataset[dict[str, Any]]):  # type: ignore[misc,unused-ignore]
    """The batches of one split from segserve (see the module docstring).

    ``url``: one base URL, several replicas, or None for ``$SEGSERVE_URL``.
    ``params`` are the other :class:`~segserve_client.BatchRequest` fields
    (``shuffle``, ``flip``, ``scale``, ...); the image dtype follows
    ``normalize`` and ``transport``: uint8 is sent and normalised here, or
    (``transport="float32"``) the server normalises.
    """

    def __init__(
        self,
        url: Url | None,
        split: str,
        height: int,
        width: int,
        batch_size: int = 64,
        epoch: int = 0,
        *,
        seed: int = 0,
        token: str | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        normalize: bool = True,
        transport: Literal["uint8", "float32"] = "uint8",
        prefetch: int = 2,
        **params: Any,
    ) -> None:
        super().__init__()
        if "dtype" in params:
            raise TypeError("RemoteVOCSegmentation takes transport= (and normalize=), not dtype=")
        dtype = "uint8" if not normalize else transport
        self.request = BatchRequest(
            height, width, batch_size=batch_size, seed=seed, epoch=epoch, dtype=dtype, **params
        )
        self.url, self.split, self.token = url, split, token
        self.rank, self.world_size = rank, world_size
        self.normalize, self.prefetch = normalize, prefetch

    @property
    def epoch(self) -> int:
        """The epoch the next iteration serves."""
        return self.request.epoch

    def set_epoch(self, epoch: int) -> None:
        """Serve epoch ``epoch`` on the next iteration (its own shuffle and crops)."""
        self.request = self.request.replace(epoch=epoch)

    def shard(self) -> tuple[int, int]:
        """(first batch number, stride) of this process and DataLoader worker."""
        rank, world_size = distributed_rank()
        rank = rank if self.rank is None else self.rank
        world_size = world_size if self.world_size is None else self.world_size
        info = get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        check_rank(rank, world_size)
        return worker_shard(rank, world_size, worker, num_workers)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        first, stride = self.shard()
        outputs = BufferPool(capacity=self.prefetch + 2)
        with SegClient(self.url, token=self.token) as client:
            loader = client.loader(
                self.split, self.request, rank=first, world_size=stride, prefetch=self.prefetch
            )
            yield from loader.map(partial(self._tensors, outputs))

    def _tensors(self, outputs: BufferPool, batch: Batch) -> dict[str, Any]:
        """The batch as tensors, normalised into ``outputs`` (runs in a prefetch thread)."""
        image = batch.image
        if self.normalize and image.dtype == np.uint8:
            n, h, w, _ = image.shape
            image = normalize_images(image, out=outputs.float32((n, 3, h, w)))
        return {
            "image": torch.from_numpy(image),
            "label": torch.from_numpy(batch.label),
            "index": torch.from_numpy(batch.index),
            "rect": torch.from_numpy(batch.rect),
            "batch": batch.number,
        }

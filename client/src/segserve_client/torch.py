"""``RemoteVOCSegmentation``: a PyTorch ``IterableDataset`` of whole segserve batches.

Use it with ``DataLoader(dataset, batch_size=None, num_workers=m)``: the server
already batches. Every batch is taken exactly once: distributed rank r of k
(``torch.distributed`` when initialised, or the explicit ``rank``/``world_size``)
takes batches r, r+k, r+2k, ... and DataLoader worker w of m every m-th of
those from the w-th on, so the DataLoader hands them out in order (see
:mod:`segserve_client.shards`). Call :meth:`set_epoch` before each epoch, as
with ``DistributedSampler``.

Mid-epoch resume follows torchdata's ``Stateful`` convention:
:meth:`state_dict` after k batches (in-process, or inside the workers of
torchdata's ``StatefulDataLoader``), and a new dataset's
:meth:`~RemoteVOCSegmentation.load_state_dict` continues at batch k+1 with the
same bytes as an uninterrupted run. With a plain ``DataLoader`` and workers,
the main process takes the state with :meth:`state_at` (k batches consumed).

Each item is a dict: ``image`` float32 (N, 3, H, W) normalised (or, with
``normalize=False``, the uint8 (N, H, W, 3) sent by the server), ``label``
uint8 (N, H, W) (``.long()`` it for ``CrossEntropyLoss(ignore_index=255)``),
``index`` int64 (N,), ``rect`` int32 (N, 4), ``batch`` the batch number.
Each item's tensors are its own memory, never reused for a later item, so
items may be held as long as needed.
torch is imported here only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from segserve_client.batch import Batch
from segserve_client.buffers import ArrayPool
from segserve_client.http import SegClient
from segserve_client.loader import BatchLoader
from segserve_client.normalize import normalize as normalize_images
from segserve_client.protocol.constants import TENSOR_NAMES
from segserve_client.request import BatchRequest
from segserve_client.session import Url
from segserve_client.shards import Progress, rank_batches


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
        self._progress = Progress(epoch)

    @property
    def epoch(self) -> int:
        """The epoch the next iteration serves."""
        return self.request.epoch

    def set_epoch(self, epoch: int) -> None:
        """Serve epoch ``epoch`` on the next iteration (its own shuffle and crops).

        A state loaded for another epoch is dropped; for the same one it stays.
        """
        if epoch != self.request.epoch:
            self._progress = Progress(epoch)
        self.request = self.request.replace(epoch=epoch)

    def ranks(self) -> tuple[int, int]:
        """(rank, world size): the explicit ones, else ``torch.distributed``'s."""
        rank, world_size = distributed_rank()
        rank = rank if self.rank is None else self.rank
        world_size = world_size if self.world_size is None else self.world_size
        rank_batches(0, rank, world_size)  # checks them
        return rank, world_size

    def state_dict(self) -> dict[str, Any]:
        """Where the iteration is: epoch and next position (after the last batch yielded)."""
        rank, world_size = self.ranks()
        return {
            **self._progress.to_dict(),
            "rank": rank,
            "world_size": world_size,
            "request": _fingerprint(self.request),
        }

    def state_at(self, consumed: int) -> dict[str, Any]:
        """The state after ``consumed`` batches of the current epoch reached this rank's trainer.

        For a plain ``DataLoader`` with workers, whose main process does not
        see the workers' progress: the trainer counts the batches it took.
        """
        state = self.state_dict()
        return {**state, **Progress(self.epoch, consumed).to_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume where ``state`` (from :meth:`state_dict` or :meth:`state_at`) was taken."""
        progress = Progress.from_dict(state)
        expected = _fingerprint(self.request.replace(epoch=progress.epoch))
        if state.get("request") != expected:
            raise ValueError("the state was taken with other batch parameters than this dataset's")
        if (state.get("rank"), state.get("world_size")) != self.ranks():
            raise ValueError(
                f"the state was taken on rank {state.get('rank')} of "
                f"{state.get('world_size')}, this is rank {self.ranks()[0]} of {self.ranks()[1]}"
            )
        self.request = self.request.replace(epoch=progress.epoch)
        self._progress = progress

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, world_size = self.ranks()
        info = get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        start = self._progress.start(worker, num_workers)
        epoch = self.request.epoch
        with SegClient(self.url, token=self.token) as client:
            mine = rank_batches(client.num_batches(self.split, self.request), rank, world_size)
            positions = range(start, len(mine), num_workers)
            numbers = mine[positions.start :: num_workers]
            self._progress = Progress(epoch, positions.start, worker, num_workers)
            loader = BatchLoader(
                client, self.split, self.request, prefetch=self.prefetch, numbers=numbers
            )
            outputs = ArrayPool(capacity=self.prefetch + 2)  # made here: datasets are pickled
            tensors = functools.partial(self._tensors, outputs=outputs)
            for position, item in zip(positions, loader.map(tensors), strict=True):
                # the state while the trainer holds this item: resume after it
                self._progress = Progress(epoch, position + num_workers, worker, num_workers)
                yield item
        if num_workers == 1:
            self._progress = Progress(epoch)  # a finished epoch iterates from its start again

    def _tensors(self, batch: Batch, outputs: ArrayPool) -> dict[str, Any]:
        """The batch as tensors (runs in a prefetch thread).

        Normalising writes the image into an array of ``outputs`` (reused only
        once the tensor made from it is freed); the small label, index and
        rect are copied, so the receive buffer goes back at once. Images
        sent as they are handed out (``normalize=False``, ``transport="float32"``)
        are the receive buffer itself, which then belongs to the tensors.
        """
        arrays = [batch.image, batch.label, batch.index, batch.rect]
        if self.normalize and batch.image.dtype == np.uint8:
            n, h, w, _ = batch.image.shape
            images = normalize_images(batch.image, outputs.empty((n, 3, h, w), np.float32))
            arrays = [images] + [a.copy() for a in arrays[1:]]
            batch.release()
        tensors = dict(zip(TENSOR_NAMES, map(torch.from_numpy, arrays), strict=True))
        return {**tensors, "batch": batch.number}


def _fingerprint(request: BatchRequest) -> dict[str, str]:
    """The batch parameters a state belongs to (the epoch is the state's own)."""
    return {k: v for k, v in request.query("batch").items() if k != "epoch"}

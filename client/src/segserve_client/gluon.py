"""``load_data_voc`` for MXNet Gluon, fed by segserve instead of the local disk.

A drop-in for the chapter's ``load_data_voc(batch_size, crop_size)``: two
iterables of ``(X, Y)`` with X float32 (N, 3, H, W) normalised and Y float32
(N, H, W) class indices, ``last_batch='discard'``; the train iterable is
shuffled, the test one is not. Each new pass (``iter()``) is the next epoch.

Each epoch arrives as an epoch stream (``GET /v1/splits/{split}/epochs/{epoch}``)
over one connection per server worker process of the replicas, so that every
worker builds batches of it; ``stream=False`` fetches batch by batch with a
:class:`~segserve_client.BatchLoader` instead (the same batches).
``transport="uint8"`` fetches uint8 NHWC (a quarter of the bytes) and
normalises here, in the decoding threads; ``"float32"`` has the server
normalise. Arrays reach MXNet through ``mx.nd.from_numpy`` (no copy); each
batch's arrays are its own: their memory serves a later batch only after
MXNet has freed every NDArray made from them.
MXNet is imported here only, when an iterator is first iterated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from segserve_client.batch import Batch
from segserve_client.buffers import ArrayPool
from segserve_client.http import SegClient
from segserve_client.loader import BatchLoader
from segserve_client.normalize import labels_as_float, normalize
from segserve_client.protocol.encoding import Encoding
from segserve_client.protocol.params import MAX_CAT_RATIO, CropMode, default_layout
from segserve_client.request import BatchRequest
from segserve_client.session import DEFAULT_URL, Url
from segserve_client.stream import check_connections

Transport = Literal["uint8", "float32"]
Void = Literal["background", "ignore"]
F32Array = npt.NDArray[np.float32]
__all__ = ["DEFAULT_URL", "Transport", "VOCBatches", "Void", "load_data_voc"]


class VOCBatches:
    """``(X, Y)`` NDArray batches of one split; every ``iter()`` starts the next epoch.

    ``request`` holds every batch parameter; its ``dtype`` is the transport
    (uint8 normalised here, or float32 normalised by the server) and its
    ``epoch`` the first epoch served. ``stream``: each epoch is read as
    ``connections`` interleaved epoch streams (None: one per server worker
    process of the replicas, as they say in ``Segserve-Workers``), else with a
    :class:`BatchLoader`; ``prefetch`` batches are decoded and normalised
    ahead of the trainer. Behind a load balancer the client sees one replica
    with the workers of whichever pod answered: give ``connections`` the
    worker processes of all of them, so that each builds part of the epoch.
    """

    def __init__(
        self,
        client: SegClient,
        split: str,
        request: BatchRequest,
        *,
        prefetch: int = 4,
        stream: bool = True,
        connections: int | None = None,
    ) -> None:
        check_connections(connections)
        if request.resolved_layout != default_layout(request.dtype):
            raise ValueError("the adapter takes uint8 NHWC or float32 NCHW images (layout=None)")
        self.client = client
        self.split = split
        self.request = request
        self.prefetch = prefetch
        self.stream = stream
        self.connections = connections
        self._outputs = ArrayPool(capacity=prefetch + 2)
        self._len: int | None = None

    @property
    def epoch(self) -> int:
        """The epoch the next ``iter()`` serves."""
        return self.request.epoch

    def set_epoch(self, epoch: int) -> None:
        """Serve epoch ``epoch`` on the next ``iter()``."""
        self.request = self.request.replace(epoch=epoch)

    def loader(self, epoch: int) -> BatchLoader:
        """The :class:`BatchLoader` behind epoch ``epoch``."""
        return self.client.loader(
            self.split, self.request.replace(epoch=epoch), prefetch=self.prefetch
        )

    def __len__(self) -> int:
        if self._len is None:
            self._len = len(self.loader(self.epoch))
        return self._len

    def close(self) -> None:
        """Close the client's connections (shared by the train and test iterables)."""
        self.client.close()

    def arrays(self, epoch: int) -> Iterator[tuple[F32Array, F32Array]]:
        """Epoch ``epoch`` as numpy ``(features, labels)``, before they become NDArrays."""
        if self.stream:
            return self.client.map_epoch(
                self.split, epoch, self._arrays, self.request, connections=self.connections,
                prefetch=max(1, self.prefetch),
            )  # fmt: skip
        return self.loader(epoch).map(self._arrays)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        import mxnet as mx

        batches = self.arrays(self.epoch)
        self.set_epoch(self.epoch + 1)
        for features, labels in batches:
            yield mx.nd.from_numpy(features), mx.nd.from_numpy(labels)

    def _arrays(self, batch: Batch) -> tuple[F32Array, F32Array]:
        """Normalised features and float labels (runs in a decoding or prefetch thread).

        Both are arrays of this iterable's :class:`ArrayPool`, so the receive
        buffer goes back at once, and their memory is reused only once MXNet
        has freed the NDArrays made from them (it reads its inputs
        asynchronously; ``from_numpy`` keeps the array alive until then).
        Server-normalised float32 images are the receive buffer itself, which
        then belongs to the NDArray.
        """
        labels = labels_as_float(batch.label, self._outputs.empty(batch.label.shape, np.float32))
        if batch.image.dtype == np.float32:
            return batch.image, labels
        n, h, w, _ = batch.image.shape
        features = normalize(batch.image, self._outputs.empty((n, 3, h, w), np.float32))
        batch.release()
        return features, labels


def load_data_voc(
    batch_size: int,
    crop_size: tuple[int, int],
    url: Url | None = None,
    *,
    token: str | None = None,
    seed: int = 0,
    void: Void = "background",
    transport: Transport = "uint8",
    prefetch: int = 4,
    encoding: Encoding = "raw",
    quality: int | None = None,
    flip: bool = False,
    scale: tuple[float, float] | None = None,
    cat_max_ratio: float = MAX_CAT_RATIO,
    photometric: bool = False,
    crop_mode: CropMode = "random",
    stream: bool = True,
    connections: int | None = None,
) -> tuple[VOCBatches, VOCBatches]:
    """``(train_iter, test_iter)`` over the ``train`` and ``val`` splits, as the chapter's.

    ``url``: one segserve base URL or several replicas (default ``$SEGSERVE_URL``,
    else ``http://127.0.0.1:8000``). ``void="background"`` gives the chapter's
    labels (border pixels 0); ``"ignore"`` keeps 255 for a loss that skips it.
    ``encoding`` (``lossless``, ``jpeg`` at ``quality``) shrinks what crosses
    the network; batches are decoded and normalised in the prefetch threads
    (encodings need ``transport="uint8"``). The training augmentations
    ``flip``, ``scale``, ``cat_max_ratio`` and ``photometric`` apply to
    ``train_iter`` only; ``crop_mode`` (``center`` or ``full``: whole images on
    a ``crop_size`` canvas, for mIoU on whole images) to ``test_iter`` only,
    ``train_iter`` always crops at random. The defaults give the chapter's pipeline.
    Each epoch is read as ``connections`` epoch streams (None: one per server
    worker process, as the replicas say; behind a load balancer, the worker
    processes of all pods behind it); ``stream=False`` fetches each batch with
    its own request instead (the same batches; for a proxy that buffers long
    responses).
    """
    if transport not in ("uint8", "float32"):
        raise ValueError(f"transport must be 'uint8' or 'float32', got {transport!r}")
    height, width = crop_size
    request = BatchRequest(
        height, width, batch_size=batch_size, seed=seed, void=void, dtype=transport,
        drop_last=True, encoding=encoding, quality=quality,
    )  # fmt: skip
    train = request.replace(
        shuffle=True, flip=flip, scale=scale, cat_max_ratio=cat_max_ratio, photometric=photometric
    )
    test = request.replace(shuffle=False, crop_mode=crop_mode)
    if crop_mode == "full":
        test = test.replace(drop_last=False)  # every whole image once
    client = SegClient(url, token=token)
    return (
        VOCBatches(
            client, "train", train, prefetch=prefetch, stream=stream, connections=connections
        ),
        VOCBatches(client, "val", test, prefetch=prefetch, stream=stream, connections=connections),
    )

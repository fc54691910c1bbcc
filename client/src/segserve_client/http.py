"""``SegClient``: the segserve HTTP API from a trainer's side.

Every call is one request through the request layer
(:class:`~segserve_client.session.Session`): failures and overload are
retried, failing over between replicas, until the client's ``deadline``
(see :mod:`segserve_client.retry`). Errors are those of
:mod:`segserve_client.errors`. Batch and crop parameters travel as one
:class:`~segserve_client.request.BatchRequest`; the keyword forms
(``client.batch("train", 3, height=320, width=480, seed=1)``) build one.

Safetensors bodies are read into pooled buffers and decoded without copying;
see :mod:`segserve_client.buffers` for how long the arrays stay valid.
"""

from __future__ import annotations

import random as random_module
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from segserve_client.batch import Batch
from segserve_client.buffers import BufferPool
from segserve_client.loader import BatchLoader
from segserve_client.replicas import ReplicaSet
from segserve_client.request import BatchRequest
from segserve_client.resolver import Resolver, system_resolver
from segserve_client.retry import DEFAULT_DEADLINE, RetryPolicy
from segserve_client.session import Session, Url, read_json, read_npy
from segserve_client.stream import check_connections, epoch_stream

T = TypeVar("T")


class SegClient:
    """A client for one or more replicas of the same segserve deployment.

    ``url``: one base URL (``http://host:8000``), several (a list, or one
    string with commas), or None for ``$SEGSERVE_URL``; requests are spread
    over them and fail over between them; a host name with several addresses
    (a headless Service) is one replica per address, looked up with
    ``resolver`` and again now and then (see :mod:`segserve_client.replicas`).
    ``token`` is sent as ``Authorization: Bearer <token>``. ``timeout`` bounds each socket
    operation; ``deadline`` how long (seconds) a request keeps being retried
    through failures and overload; ``jitter`` the random share added to each
    wait. ``sleep``, ``clock`` and ``random`` are injectable for tests.
    Thread-safe; close it (or use it as a context manager) to close its
    connections.
    """

    def __init__(
        self,
        url: Url | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        deadline: float = DEFAULT_DEADLINE,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        jitter: float = 0.5,
        buffers: int = 8,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = random_module.random,
        resolver: Resolver = system_resolver,
    ) -> None:
        policy = RetryPolicy(deadline, jitter, sleep=sleep, clock=clock, random=random)
        self.session = Session(
            url, token, timeout=timeout, retry=policy, backoff=backoff,
            max_backoff=max_backoff, buffers=buffers, resolver=resolver,
        )  # fmt: skip

    def __enter__(self) -> SegClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection; the client cannot be used afterwards."""
        self.session.close()

    @property
    def replicas(self) -> ReplicaSet:
        """The replicas and their health."""
        return self.session.replicas

    @property
    def pool(self) -> BufferPool:
        """The receive buffers batches are read into."""
        return self.session.pool

    # -- metadata -------------------------------------------------------------

    def dataset(self) -> dict[str, Any]:
        """``GET /v1/dataset``: name, num_classes, ignore_index, mean, std, splits."""
        result: dict[str, Any] = self.get_json("/v1/dataset")
        return result

    def classes(self) -> list[dict[str, Any]]:
        """``GET /v1/classes``: index, name and color of the 21 classes."""
        result: list[dict[str, Any]] = self.get_json("/v1/classes")
        return result

    def colormap(self) -> dict[str, Any]:
        """``GET /v1/colormap``: colors, ignore_index, ignore_color."""
        result: dict[str, Any] = self.get_json("/v1/colormap")
        return result

    def split(
        self, split: str, request: BatchRequest | None = None, **params: Any
    ) -> dict[str, Any]:
        """``GET /v1/splits/{split}``: size, and usable/batches for a request's parameters."""
        query = {} if request is None and not params else _request(request, params).query("split")
        result: dict[str, Any] = self.get_json(f"/v1/splits/{quote(split)}", query)
        return result

    def num_batches(self, split: str, request: BatchRequest | None = None, **params: Any) -> int:
        """How many batches an epoch has for these crop and batch parameters."""
        return int(self.split(split, _request(request, params))["batches"])

    def sample(self, split: str, index: int) -> dict[str, Any]:
        """``GET .../samples/{index}``: index, id, height, width."""
        result: dict[str, Any] = self.get_json(f"/v1/splits/{quote(split)}/samples/{index}")
        return result

    def get_json(self, path: str, query: dict[str, str] | None = None) -> Any:
        """``GET path?query`` and parse the JSON answer."""
        return self.session.get(path, query or {}, read_json)

    # -- arrays ---------------------------------------------------------------

    def image(self, split: str, index: int) -> npt.NDArray[np.uint8]:
        """The decoded RGB image of a sample, (H, W, 3) uint8."""
        path = f"/v1/splits/{quote(split)}/samples/{index}/image"
        return self.session.get(path, {"format": "npy"}, read_npy)

    def label(self, split: str, index: int, *, void: str = "ignore") -> npt.NDArray[np.uint8]:
        """The decoded class indices of a sample, (H, W) uint8."""
        path = f"/v1/splits/{quote(split)}/samples/{index}/label"
        return self.session.get(path, {"format": "npy", "void": void}, read_npy)

    def crop(
        self,
        split: str,
        request: BatchRequest | None = None,
        *,
        index: int | None = None,
        **params: Any,
    ) -> Batch:
        """One crop pair as a batch of one: sample ``index``, else one picked by the seed.

        Keywords are :class:`BatchRequest` fields; without a request or a
        ``seed``, the server picks the seed (crops only).
        """
        if request is None:
            params.setdefault("seed", None)
        query = _request(request, params).query("crop")
        if index is not None:
            query["index"] = str(index)
        query["format"] = "safetensors"
        return self.session.get(f"/v1/splits/{quote(split)}/crop", query, self.session.read_batch)

    def batch(
        self,
        split: str,
        number: int,
        request: BatchRequest | None = None,
        *,
        hint: int | None = None,
        **params: Any,
    ) -> Batch:
        """Batch ``number`` of an epoch; keywords are :class:`BatchRequest` fields.

        ``hint`` picks the replica to ask first (default: ``number``, spreading
        consecutive batches over the replicas).
        """
        query = _request(request, params).query("batch")
        path = f"/v1/splits/{quote(split)}/batches/{number}"
        hint = number if hint is None else hint
        return self.session.get(path, query, self.session.read_batch, hint=hint)

    # -- epochs ---------------------------------------------------------------

    def loader(
        self,
        split: str,
        request: BatchRequest,
        *,
        rank: int = 0,
        world_size: int = 1,
        prefetch: int = 4,
        recycle: bool = False,
    ) -> BatchLoader:
        """The :class:`BatchLoader` of ``request``'s epoch for rank ``rank`` of ``world_size``.

        ``recycle=True``: each batch is released when the next is asked for.
        """
        return BatchLoader(
            self, split, request, rank=rank, world_size=world_size, prefetch=prefetch,
            recycle=recycle,
        )  # fmt: skip

    def iter_epoch(
        self,
        split: str,
        epoch: int,
        batch_size: int,
        height: int,
        width: int,
        seed: int = 0,
        *,
        rank: int = 0,
        world_size: int = 1,
        prefetch: int = 4,
        **params: Any,
    ) -> Iterator[Batch]:
        """The batches of one epoch in order, prefetched; see :class:`BatchLoader`.

        ``rank`` of ``world_size`` takes batches rank, rank + world_size, ...;
        ``params`` are the other :class:`BatchRequest` fields.
        """
        request = BatchRequest(
            height, width, batch_size=batch_size, seed=seed, epoch=epoch, **params
        )
        return iter(
            self.loader(split, request, rank=rank, world_size=world_size, prefetch=prefetch)
        )

    def stream_epoch(
        self,
        split: str,
        epoch: int,
        request: BatchRequest | None = None,
        *,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
        connections: int | None = 1,
        prefetch: int = 2,
        **params: Any,
    ) -> Iterator[Batch]:
        """The batches ``start``, ``start + step``, ... (below ``stop``) of one epoch stream.

        ``connections`` > 1 splits the epoch over that many interleaved streams
        (one connection each) and merges them back in order: a server with
        several worker processes then builds it in several of them;
        ``connections=None`` opens one per worker process of the replicas
        (:meth:`worker_processes`, as they say when asked the epoch's length).
        ``prefetch`` frames are decoded at once, in threads, while the next
        ones arrive.

        A stream that breaks, or ends early, is resumed after the last whole
        batch, on another replica when there is one; determinism makes the
        resumed part identical.
        """
        return self.map_epoch(
            split, epoch, _identity, request, start=start, stop=stop, step=step,
            connections=connections, prefetch=prefetch, **params,
        )  # fmt: skip

    def map_epoch(
        self,
        split: str,
        epoch: int,
        transform: Callable[[Batch], T],
        request: BatchRequest | None = None,
        *,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
        connections: int | None = 1,
        prefetch: int = 2,
        **params: Any,
    ) -> Iterator[T]:
        """``transform(batch)`` of each batch of :meth:`stream_epoch`, in order, run in its
        decoding threads (as :meth:`BatchLoader.map` runs it in the prefetch threads).

        ``transform`` owns the batch it is given: it returns it, or what it
        made of it (releasing the batch when it no longer needs its memory).
        """
        check_connections(connections)
        request = _request(request, params).replace(epoch=epoch)
        if step < 1 or start < 0:
            raise ValueError(f"start must be >= 0 and step >= 1, got start={start}, step={step}")
        if prefetch < 1:
            raise ValueError(f"prefetch must be >= 1, got {prefetch}")
        total = self.num_batches(split, request)
        numbers = range(start, total if stop is None else min(stop, total), step)
        path = f"/v1/splits/{quote(split)}/epochs/{epoch}"
        query = request.query("stream")
        if connections is None:
            connections = self.worker_processes()
        return epoch_stream(
            self.session, path, query, numbers, transform, prefetch=prefetch,
            connections=connections,
        )  # fmt: skip

    def worker_processes(self) -> int:
        """The server worker processes of every replica, as far as the replicas have said
        (``Segserve-Workers``; 1 for one that has not): the ``connections`` an epoch
        stream needs to build its batches in all of them."""
        return self.session.worker_processes()


def _request(request: BatchRequest | None, params: dict[str, Any]) -> BatchRequest:
    """``request`` with ``params`` applied, or a new one from ``params``."""
    return BatchRequest.of(request, **params)


def _identity(batch: Batch) -> Batch:
    return batch

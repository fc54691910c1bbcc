"""``SegClient``: the segserve HTTP API from a trainer's side.

Errors are those of :mod:`segserve_client.errors`. Every request is a ``GET`` and
idempotent, so transport failures, 429, 503 and other 5xx answers are retried
(``retries`` times, with tenacity) -- on the next healthy replica when there
are several, otherwise after the replica's back-off or its ``Retry-After``.

Safetensors bodies are read into pooled buffers and decoded without copying;
see :mod:`segserve_client.buffers` for how long the arrays stay valid.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import numpy as np
import numpy.typing as npt
import tenacity

from segserve_client.batch import Batch
from segserve_client.buffers import BufferPool
from segserve_client.errors import (
    ProtocolError,
    ServerError,
    TransportError,
    is_retryable,
    server_error,
)
from segserve_client.replicas import ReplicaSet
from segserve_client.transport import Connections, Response, read_body, request, retry_after_seconds

T = TypeVar("T")
ParamValue = str | int | float | bool | Sequence[float] | None
_ERROR_BODY_LIMIT = 1 << 16


def query_string(params: Mapping[str, ParamValue]) -> str:
    """``?a=1&b=true`` from ``params`` (None dropped, booleans lower-case, lists joined)."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            text = ",".join(str(v) for v in value)
        pairs.append((name, text))
    return "?" + urlencode(pairs) if pairs else ""


class SegClient:
    """A client for one or more replicas of the same segserve deployment.

    ``urls``: one base URL or several (``http://host:8000``); requests are
    spread over them and fail over between them. ``token`` is sent as
    ``Authorization: Bearer <token>``. ``timeout`` bounds each socket operation;
    ``sleep`` and ``clock`` are injectable for tests. Thread-safe; close it
    (or use it as a context manager) to close its connections.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        buffers: int = 8,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        url_list = [urls] if isinstance(urls, str) else list(urls)
        self.replicas = ReplicaSet(url_list, backoff=backoff, max_backoff=max_backoff, clock=clock)
        self.retries = retries
        self.pool = BufferPool(buffers)
        self._connections = Connections(timeout)
        self._sleep = sleep
        self._headers = {"User-Agent": "segserve-client", "Accept-Encoding": "identity"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"

    def __enter__(self) -> SegClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection; the client cannot be used afterwards."""
        self._connections.close()

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

    def split(self, split: str, **params: ParamValue) -> dict[str, Any]:
        """``GET /v1/splits/{split}``: size, and usable/batches for the given parameters."""
        result: dict[str, Any] = self.get_json(f"/v1/splits/{quote(split)}", params)
        return result

    def num_batches(self, split: str, *, height: int, width: int, **params: ParamValue) -> int:
        """How many batches an epoch has for these crop and batch parameters."""
        info = self.split(split, height=height, width=width, **params)
        return int(info["batches"])

    def sample(self, split: str, index: int) -> dict[str, Any]:
        """``GET .../samples/{index}``: index, id, height, width."""
        result: dict[str, Any] = self.get_json(f"/v1/splits/{quote(split)}/samples/{index}")
        return result

    # -- arrays ---------------------------------------------------------------

    def image(self, split: str, index: int) -> npt.NDArray[np.uint8]:
        """The decoded RGB image of a sample, (H, W, 3) uint8."""
        path = f"/v1/splits/{quote(split)}/samples/{index}/image"
        return self.get(path, {"format": "npy"}, _read_npy)

    def label(self, split: str, index: int, *, void: str = "ignore") -> npt.NDArray[np.uint8]:
        """The decoded class indices of a sample, (H, W) uint8."""
        path = f"/v1/splits/{quote(split)}/samples/{index}/label"
        return self.get(path, {"format": "npy", "void": void}, _read_npy)

    def crop(self, split: str, *, height: int, width: int, **params: ParamValue) -> Batch:
        """One random crop pair as a batch of one (``index``, ``seed``, ``void``, ...)."""
        params = {"height": height, "width": width, **params, "format": "safetensors"}
        return self.get(f"/v1/splits/{quote(split)}/crop", params, self._read_batch)

    def batch(
        self, split: str, number: int, *, hint: int | None = None, **params: ParamValue
    ) -> Batch:
        """Batch ``number`` of an epoch; ``params`` as in API.md (height, width, seed, ...).

        ``hint`` picks the replica to ask first (default: ``number``, spreading
        consecutive batches over the replicas).
        """
        path = f"/v1/splits/{quote(split)}/batches/{number}"
        return self.get(path, params, self._read_batch, hint=number if hint is None else hint)

    # -- requests -------------------------------------------------------------

    def get_json(self, path: str, params: Mapping[str, ParamValue] | None = None) -> Any:
        """``GET path`` and parse the JSON answer."""
        return self.get(path, params or {}, _read_json)

    def get(
        self,
        path: str,
        params: Mapping[str, ParamValue],
        read: Callable[[Response], T],
        *,
        hint: int = 0,
    ) -> T:
        """``GET path?params`` with retries; ``read`` turns a 2xx response into the result."""
        target = path + query_string(params)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=lambda _: self.replicas.wait_time(),
            retry=tenacity.retry_if_exception(is_retryable),
            sleep=self.pause,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                result = self._get_once(target, read, hint)
        return result

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (through the injected ``sleep``) unless there is nothing to wait."""
        if seconds > 0:
            self._sleep(seconds)

    def _get_once(self, target: str, read: Callable[[Response], T], hint: int) -> T:
        """One attempt on one replica; a retryable failure takes that replica out for a while."""
        i = self.replicas.pick(hint)
        replica = self.replicas.replicas[i]
        try:
            with request(self._connections, replica, target, self._headers) as response:
                if response.status >= 400:
                    raise self._error(response)
                result = read(response)
        except (TransportError, ServerError) as error:
            if is_retryable(error):
                self.replicas.failed(i, getattr(error, "retry_after", None))
            raise
        self.replicas.succeeded(i)
        return result

    def _error(self, response: Response) -> ServerError:
        """The :class:`ServerError` for an error response, with its RFC 9457 problem."""
        body = response.raw.read(_ERROR_BODY_LIMIT)
        try:
            problem = json.loads(body)
        except ValueError:
            problem = None
        if not isinstance(problem, dict):
            text = body.decode("utf-8", "replace")[:500]
            problem = {"title": response.raw.reason, "status": response.status, "detail": text}
        retry_after = retry_after_seconds(response.header("Retry-After"))
        return server_error(response.status, problem, url=response.url, retry_after=retry_after)

    def _read_batch(self, response: Response) -> Batch:
        try:
            return Batch.decode(read_body(response, self.pool), self.pool.decode_target)
        except ValueError as error:
            raise ProtocolError(f"{response.url}: {error}") from None

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
        **params: ParamValue,
    ) -> Iterator[Batch]:
        """The batches of one epoch in order, prefetched; see :class:`~segserve_client.BatchLoader`.

        ``rank`` of ``world_size`` takes batches rank, rank + world_size, ...;
        ``params`` are the other API.md batch parameters.
        """
        from segserve_client.loader import BatchLoader

        loader = BatchLoader(
            self, split, height=height, width=width, batch_size=batch_size, epoch=epoch,
            seed=seed, rank=rank, world_size=world_size, prefetch=prefetch, **params,
        )  # fmt: skip
        return iter(loader)

    def stream_epoch(self, split: str, epoch: int, **params: ParamValue) -> Iterator[Batch]:
        """The batches of an epoch stream (``start``, ``stop``, ``step`` select them), in order.

        A stream that breaks is resumed after the last whole batch, on another
        replica when there is one; determinism makes the resumed part identical.
        """
        from segserve_client.stream import resume_stream

        return resume_stream(self, f"/v1/splits/{quote(split)}/epochs/{epoch}", params)

    def _open(self, index: int, target: str) -> AbstractContextManager[Response]:
        """A raw streaming request on replica ``index`` (see :mod:`segserve_client.stream`)."""
        return request(self._connections, self.replicas.replicas[index], target, self._headers)


def _read_json(response: Response) -> Any:
    try:
        return json.loads(response.raw.read())
    except ValueError as error:
        raise ProtocolError(f"{response.url}: not JSON ({error})") from None


def _read_npy(response: Response) -> npt.NDArray[np.uint8]:
    try:
        array: npt.NDArray[np.uint8] = np.load(io.BytesIO(response.raw.read()), allow_pickle=False)
    except ValueError as error:
        raise ProtocolError(f"{response.url}: not an npy array ({error})") from None
    return array

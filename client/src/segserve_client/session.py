"""The request layer: connections to the replicas, one ``GET`` with its retry loop, errors.

:class:`Session` knows nothing of batches, loaders or streams; it sends a
``GET`` for a path and query, hands the response to a reader, maps error
statuses to :mod:`segserve_client.errors`, and runs every attempt through the
one :class:`~segserve_client.retry.RetryPolicy`. ``SegClient``, the batch
loader and the epoch stream are built on top of it.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

import numpy as np
import numpy.typing as npt

from segserve_client.batch import Batch
from segserve_client.buffers import BatchLease, BufferPool
from segserve_client.errors import ProtocolError, ServerError, server_error
from segserve_client.replicas import ReplicaSet
from segserve_client.resolver import Resolver, system_resolver
from segserve_client.retry import RetryPolicy
from segserve_client.transport import (
    Connections,
    Response,
    read_body,
    request,
    retry_after_seconds,
)

T = TypeVar("T")
Url = str | Sequence[str]
DEFAULT_URL: Final = "http://127.0.0.1:8000"
URL_VARIABLE: Final = "SEGSERVE_URL"
_ERROR_BODY_LIMIT = 1 << 16


def replica_urls(url: Url | None) -> list[str]:
    """The replica list from ``url``: one URL, several, or None for ``$SEGSERVE_URL``.

    ``$SEGSERVE_URL`` may list replicas separated by commas; without it, the
    default is ``http://127.0.0.1:8000``.
    """
    if url is None:
        url = os.environ.get(URL_VARIABLE) or DEFAULT_URL
    if isinstance(url, str):
        return [part.strip() for part in url.split(",") if part.strip()]
    return list(url)


def query_string(query: Mapping[str, str]) -> str:
    """``?a=1&b=2`` from ``query`` ('' when empty)."""
    return "?" + urlencode(list(query.items())) if query else ""


class Session:
    """Connections to the replicas of one deployment and the retry policy; thread-safe.

    ``url``: one base URL, several (a list, or one string with commas), or
    None for ``$SEGSERVE_URL``. ``token`` goes out as ``Authorization: Bearer``.
    ``timeout`` bounds each socket operation; ``retry`` is the retry policy;
    ``backoff``/``max_backoff`` how long a failing replica stays out;
    ``resolver`` looks host names up (one replica per address).
    """

    def __init__(
        self,
        url: Url | None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        buffers: int = 8,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.replicas = ReplicaSet(
            replica_urls(url), backoff=backoff, max_backoff=max_backoff, clock=self.retry.clock,
            resolver=resolver,
        )  # fmt: skip
        self.pool = BufferPool(buffers)
        self._connections = Connections(timeout)
        self._headers = {"User-Agent": "segserve-client", "Accept-Encoding": "identity"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        """Close every connection; the session cannot be used afterwards."""
        self._connections.close()

    def worker_processes(self) -> int:
        """The worker processes of the replicas as they said (``Segserve-Workers``), 1 for
        a replica that has not said (yet)."""
        return sum(self._connections.workers(r) or 1 for r in self.replicas.replicas)

    def get(
        self,
        path: str,
        query: Mapping[str, str],
        read: Callable[[Response], T],
        *,
        hint: int = 0,
    ) -> T:
        """``GET path?query`` until it succeeds; ``read`` turns the 2xx response into the result.

        ``hint`` picks the replica to ask first (round robin from there).
        """
        target = path + query_string(query)

        def attempt(i: int) -> T:
            with self.response(i, target) as response:
                return read(response)

        return self.retry.call(self.replicas, attempt, hint=hint, url=target)

    @contextmanager
    def response(
        self, replica: int, target: str, avoid: frozenset[str] = frozenset()
    ) -> Iterator[Response]:
        """One attempt: the 2xx response of replica ``replica`` to ``GET target``, body unread.

        ``avoid``: server worker processes (``Segserve-Worker`` ids) to keep
        the request away from when the replica has others. An error status
        raises its :class:`~segserve_client.errors.ServerError`. The
        connection goes back to the pool when the body was read to the end.
        """
        replica_ = self.replicas.replicas[replica]
        conn = request(self._connections, replica_, target, self._headers, avoid)
        with conn as response:
            if response.status >= 400:
                raise error_of(response)
            yield response

    def read_batch(self, response: Response) -> Batch:
        """The response's safetensors body, read into leased memory and decoded there.

        Raw tensors are views of the body, encoded ones are decoded into
        leased bytes too; :meth:`Batch.release` gives all of it back.
        """
        lease = BatchLease(self.pool)
        try:
            body = read_body(response, lease.take)
            return Batch.decode(body, lease.target, lease)
        except ValueError as error:
            lease.release()
            raise ProtocolError(f"{response.url}: {error}") from None
        except BaseException:
            lease.release()
            raise


def error_of(response: Response) -> ServerError:
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


def read_json(response: Response) -> Any:
    """The response's JSON body."""
    try:
        return json.loads(response.raw.read())
    except ValueError as error:
        raise ProtocolError(f"{response.url}: not JSON ({error})") from None


def read_npy(response: Response) -> npt.NDArray[np.uint8]:
    """The response's ``.npy`` body."""
    try:
        array: npt.NDArray[np.uint8] = np.load(io.BytesIO(response.raw.read()), allow_pickle=False)
    except ValueError as error:
        raise ProtocolError(f"{response.url}: not an npy array ({error})") from None
    return array

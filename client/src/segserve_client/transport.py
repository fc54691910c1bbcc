"""HTTP/1.1 over persistent ``http.client`` connections, bodies read into pooled buffers.

``http.client`` rather than httpx: on this machine a 40 MB body over loopback
came in at 0.44 GB/s through ``httpx.Client.get(...).content`` and at 2.75 GB/s
through ``HTTPResponse.readinto`` into a reused buffer sized from
``Content-Length``.

Each thread that talks to a replica checks a connection out, uses it for one
request and puts it back, so concurrent threads get one connection each and a
connection outlives the thread that opened it. Every failure to get a full
answer becomes a :class:`~segserve_client.errors.TransportError`.

Each connection remembers the server worker process it reached (the
``Segserve-Worker`` header of its responses). A request can ask for a
connection to a worker other than some (:func:`request`'s ``avoid``): an idle
connection to another worker is taken if there is one, else new connections
are opened and asked ``GET /healthz`` until one reaches another worker, at most
:data:`PLACEMENT_TRIES` of them (those that reach an avoided worker stay idle
in the pool). That is how the streams of one epoch go to different processes.
"""

from __future__ import annotations

import email.utils
import http.client
import select
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import numpy as np

from segserve_client.buffers import Bytes
from segserve_client.errors import ClientClosedError, TransportError

# Raised when a keep-alive connection the server had already closed is reused.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
# What a broken connection raises while a response is read.
FAILURES = (OSError, http.client.HTTPException)
WORKER_HEADER: Final = "Segserve-Worker"
WORKERS_HEADER: Final = "Segserve-Workers"
# New connections tried to reach a worker not to be avoided; with two workers
# each lands on the other one about half the time.
PLACEMENT_TRIES: Final = 6
PLACEMENT_PROBE: Final = "/healthz"
_PROBE_BODY_LIMIT: Final = 1 << 12


@dataclass(frozen=True)
class Replica:
    """One server: ``scheme://host:port/prefix``."""

    url: str

    @property
    def _parts(self) -> tuple[str, str, int, str]:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {self.url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return parts.scheme, parts.hostname, port, parts.path.rstrip("/")

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        """A new (not yet connected) connection to this replica."""
        scheme, host, port, _ = self._parts
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        return cls(host, port, timeout=timeout)

    def target(self, path: str) -> str:
        """The request target for ``path`` (which starts with ``/``) below the URL's prefix."""
        return self._parts[3] + path


class Connections:
    """Idle keep-alive connections per replica; a checked-out one belongs to one thread."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._idle: dict[Replica, list[http.client.HTTPConnection]] = {}
        self._open: set[http.client.HTTPConnection] = set()
        self._workers: dict[http.client.HTTPConnection, str] = {}  # from its responses
        self._counts: dict[Replica, int] = {}  # worker processes each replica says it has
        self._lock = threading.Lock()
        self._closed = False

    def checkout(
        self, replica: Replica, avoid: frozenset[str] = frozenset()
    ) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to ``replica`` and whether it was used before.

        The most recently used idle connection, or with ``avoid``, the most
        recent one known to reach a worker not in ``avoid`` (else a new one).
        Idle connections the server has closed meanwhile (uvicorn closes idle
        keep-alive connections after a few seconds) are dropped here, before
        a request is sent on them.
        """
        with self._lock:
            if self._closed:
                raise ClientClosedError(f"the client is closed ({replica.url})")
            idle = self._idle.get(replica, [])
            for position in range(len(idle) - 1, -1, -1):
                conn = idle[position]
                worker = self._workers.get(conn)
                if avoid and (worker is None or worker in avoid):
                    continue
                del idle[position]
                if not _dropped(conn):
                    return conn, True
                conn.close()
                self._forget(conn)
            return self._connect(replica), False

    def connect(self, replica: Replica) -> http.client.HTTPConnection:
        """A new connection to ``replica`` (checked out)."""
        with self._lock:
            if self._closed:
                raise ClientClosedError(f"the client is closed ({replica.url})")
            return self._connect(replica)

    def _connect(self, replica: Replica) -> http.client.HTTPConnection:
        conn = replica.connect(self.timeout)
        self._open.add(conn)
        return conn

    def _forget(self, conn: http.client.HTTPConnection) -> None:
        self._open.discard(conn)
        self._workers.pop(conn, None)

    def learn(
        self, replica: Replica, conn: http.client.HTTPConnection, raw: http.client.HTTPResponse
    ) -> None:
        """Remember the worker ``conn`` reaches and the replica's worker count, if it says."""
        worker, count = raw.getheader(WORKER_HEADER), raw.getheader(WORKERS_HEADER)
        with self._lock:
            if worker:
                self._workers[conn] = worker
            if count is not None and count.isdigit():
                self._counts[replica] = int(count)

    def worker(self, conn: http.client.HTTPConnection) -> str | None:
        """The worker ``conn`` reaches, when known."""
        with self._lock:
            return self._workers.get(conn)

    def workers(self, replica: Replica) -> int | None:
        """How many worker processes ``replica`` said it runs, when it has said."""
        with self._lock:
            return self._counts.get(replica)

    def discard_idle(self, replica: Replica) -> None:
        """Close every idle connection to ``replica`` (after one of them turned out stale)."""
        with self._lock:
            idle, self._idle[replica] = self._idle.get(replica, []), []
            for conn in idle:
                self._forget(conn)
        for conn in idle:
            conn.close()

    def checkin(self, replica: Replica, conn: http.client.HTTPConnection) -> None:
        """Give back a connection whose last response was read to the end."""
        with self._lock:
            if not self._closed:
                self._idle.setdefault(replica, []).append(conn)
                return
        self.discard(conn)

    def discard(self, conn: http.client.HTTPConnection) -> None:
        """Close a connection that is broken or left in the middle of a response."""
        conn.close()
        with self._lock:
            self._forget(conn)

    def close(self) -> None:
        """Close every connection, idle or checked out."""
        with self._lock:
            self._closed = True
            conns, self._open, self._idle = list(self._open), set(), {}
            self._workers.clear()
        for conn in conns:
            conn.close()


@dataclass
class Response:
    """A response whose body has not been read yet, on a checked-out connection."""

    status: int
    headers: http.client.HTTPMessage
    raw: http.client.HTTPResponse
    url: str

    def header(self, name: str) -> str | None:
        """The value of header ``name``, if present."""
        return self.headers.get(name)


@contextmanager
def request(
    connections: Connections,
    replica: Replica,
    path: str,
    headers: Mapping[str, str],
    avoid: frozenset[str] = frozenset(),
) -> Iterator[Response]:
    """Send ``GET path`` and hold the connection while the caller reads the body.

    ``avoid``: server workers (``Segserve-Worker`` ids) the request should not
    go to, when the replica has another (see the module docstring). The
    connection goes back to the pool when the body was read to the end, and
    is closed otherwise.
    """
    conn, raw = _send(connections, replica, path, headers, avoid)
    try:
        yield Response(raw.status, raw.headers, raw, replica.url + path)
    except FAILURES as error:
        raise TransportError(f"{type(error).__name__}: {error}", url=replica.url) from error
    finally:
        if raw.isclosed() and not raw.will_close:
            connections.checkin(replica, conn)
        else:
            connections.discard(conn)


def _send(
    connections: Connections,
    replica: Replica,
    path: str,
    headers: Mapping[str, str],
    avoid: frozenset[str] = frozenset(),
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Send the request; a stale keep-alive connection is replaced once."""
    for _ in range(2):
        conn, reused = _checkout(connections, replica, headers, avoid)
        try:
            conn.request("GET", replica.target(path), headers=dict(headers))
            raw = conn.getresponse()
        except _STALE as error:
            connections.discard(conn)
            connections.discard_idle(replica)  # its siblings idled as long: the next is fresh
            if not reused:
                raise TransportError(f"{type(error).__name__}: {error}", url=replica.url) from None
        except FAILURES as error:
            connections.discard(conn)
            raise TransportError(f"{type(error).__name__}: {error}", url=replica.url) from None
        else:
            connections.learn(replica, conn, raw)
            return conn, raw
    raise TransportError("connection closed twice in a row", url=replica.url)


def _checkout(
    connections: Connections,
    replica: Replica,
    headers: Mapping[str, str],
    avoid: frozenset[str],
) -> tuple[http.client.HTTPConnection, bool]:
    """A connection for the next request: one to a worker not in ``avoid`` when the replica
    has one (known, or found by probing new connections), else the usual one."""
    count = connections.workers(replica)
    if not avoid or (count is not None and count <= len(avoid)):
        return connections.checkout(replica)
    conn, reused = connections.checkout(replica, avoid)
    if connections.worker(conn) is not None:  # an idle one known to reach another worker
        return conn, reused
    for attempt in range(PLACEMENT_TRIES):
        if attempt:
            conn = connections.connect(replica)
        worker = _probe(connections, replica, conn, headers)
        if worker is None or worker not in avoid:  # no worker header: no placement to do
            return conn, True
        connections.checkin(replica, conn)  # reaches an avoided worker: left for later requests
    return connections.checkout(replica)  # none found: the stream shares a worker


def _probe(
    connections: Connections,
    replica: Replica,
    conn: http.client.HTTPConnection,
    headers: Mapping[str, str],
) -> str | None:
    """``GET /healthz`` on ``conn``: the worker it reaches (None when the server does not say)."""
    try:
        conn.request("GET", replica.target(PLACEMENT_PROBE), headers=dict(headers))
        raw = conn.getresponse()
        raw.read(_PROBE_BODY_LIMIT)
    except FAILURES as error:
        connections.discard(conn)
        raise TransportError(f"{type(error).__name__}: {error}", url=replica.url) from None
    if not raw.isclosed() or raw.will_close:
        connections.discard(conn)
        raise TransportError("the placement probe's connection was closed", url=replica.url)
    connections.learn(replica, conn, raw)
    return connections.worker(conn)


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle connection was closed by the server (its socket reads EOF or fails).

    An idle keep-alive socket has nothing to read; readable means the peer
    closed it (or sent something unexpected), so it cannot carry a request.
    """
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def read_body(response: Response, acquire: Callable[[int], Bytes]) -> Bytes:
    """The whole body in ``acquire(length)``'s bytes (read in place when the length is known)."""
    length = response.raw.length
    if length is None:
        data = response.raw.read()
        buffer = acquire(len(data))
        buffer[:] = np.frombuffer(data, dtype=np.uint8)
        return buffer
    buffer = acquire(length)
    _read_into(response, buffer.data, length)
    return buffer


def _read_into(response: Response, view: memoryview, length: int) -> None:
    got = 0
    while got < length:
        n = response.raw.readinto(view[got:])
        if not n:
            raise TransportError(f"body cut short at {got} of {length} bytes", url=response.url)
        got += n
    if not response.raw.isclosed():
        response.raw.read()  # an empty body: lets the connection go back to the pool


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())

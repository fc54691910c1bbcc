"""A local HTTP file server with switches for the failures a download must survive.

It serves one file at any path, answers ``Range: bytes=N-`` with 206 (416 past the
end), and can cut the connection, ignore ``Range`` or fail with a status for the
first few requests. Every request is recorded before its body is sent, so a test
that has read the whole response sees its record.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass(frozen=True)
class Served:
    """One request as the server saw and answered it."""

    range: str | None
    status: int
    body_bytes: int


@dataclass
class FileServer:
    """What to serve and how to misbehave; start it with ``with FileServer(body) as server``."""

    body: bytes = b""
    cut_after: int = 0  # body bytes sent before a cut
    cuts: int = 0  # the first `cuts` responses stop after `cut_after` bytes
    fail_status: int = 503
    failures: int = 0  # the first `failures` requests get `fail_status`
    ignore_range: bool = False  # answer 200 with the whole file even to a Range request
    requests: list[Served] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def url(self, name: str = "VOCtrainval_11-May-2012.tar") -> str:
        """The address of the served file under ``name``."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/{name}"

    def record(self, served: Served) -> int:
        """Append a request's record; return its 0-based number."""
        with self._lock:
            self.requests.append(served)
            return len(self.requests) - 1

    def count(self) -> int:
        """Requests received so far."""
        with self._lock:
            return len(self.requests)

    def __enter__(self) -> FileServer:
        self._httpd = _Server(self)
        # A short poll interval only shortens shutdown(); requests are served at once.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="file-server"
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._httpd is not None
        assert self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()  # also joins the request threads
        self._thread.join()


class _Server(ThreadingHTTPServer):
    def __init__(self, state: FileServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        state = self.server.state
        header = self.headers.get("Range")
        match = re.fullmatch(r"bytes=(\d+)-", header or "")
        start = int(match.group(1)) if match and not state.ignore_range else None
        size = len(state.body)
        number = state.count()
        if number < state.failures:
            self._answer(state, header, state.fail_status, b"")
        elif start is not None and start >= size:
            self._answer(state, header, 416, b"", {"Content-Range": f"bytes */{size}"})
        elif start is not None:
            extra = {"Content-Range": f"bytes {start}-{size - 1}/{size}"}
            self._answer(state, header, 206, state.body[start:], extra, cut=number < state.cuts)
        else:
            self._answer(state, header, 200, state.body, cut=number < state.cuts)

    def _answer(
        self,
        state: FileServer,
        header: str | None,
        status: int,
        body: bytes,
        extra: dict[str, str] | None = None,
        *,
        cut: bool = False,
    ) -> None:
        sent = body[: state.cut_after] if cut else body
        state.record(Served(range=header, status=status, body_bytes=len(sent)))
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(sent)
        self.close_connection = True  # after a cut, the short body ends with the connection

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

"""A scripted HTTP/1.1 server on 127.0.0.1 for the client's own logic.

``answer(request) -> Reply`` decides each response; a reply can also cut the
body short or drop the connection after answering (a stale keep-alive).
Every request is recorded before it is answered.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    client_port: int


@dataclass(frozen=True)
class Reply:
    """What to answer: status, headers, body; ``send`` bytes of the body then close (cut)."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    send: int | None = None
    close_after: bool = False
    chunked: bool = False


def json_reply(value: Any, status: int = 200, **headers: str) -> Reply:
    """A JSON (or, for an error status, problem+JSON) reply."""
    kind = "application/json" if status < 400 else "application/problem+json"
    return Reply(status, json.dumps(value).encode(), {"Content-Type": kind, **headers})


def problem(status: int, detail: str, **headers: str) -> Reply:
    """An RFC 9457 problem reply."""
    body = {"type": "about:blank", "title": "error", "status": status, "detail": detail}
    return json_reply(body, status, **headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 10

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        request = Request(parts.path, query, dict(self.headers.items()), self.client_address[1])
        with self.server.owner.lock:
            self.server.owner.requests.append(request)
        reply = self.server.owner.answer(request)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        body = reply.body if reply.send is None else reply.body[: reply.send]
        if reply.chunked:
            self.wfile.write(_chunk(body))
            if reply.send is None:
                self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)
        self.wfile.flush()
        if reply.send is not None or reply.close_after:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else b""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: FakeServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner


class FakeServer:
    """``with FakeServer(answer) as server``: serves until the block ends."""

    def __init__(self, answer: Callable[[Request], Reply]) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self._httpd = _Server(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,), daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def paths(self) -> list[str]:
        """The paths requested so far, in order."""
        with self.lock:
            return [r.path for r in self.requests]

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

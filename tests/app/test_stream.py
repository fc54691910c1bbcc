"""The epoch stream over a real socket: a client that hangs up stops the server's work."""

from __future__ import annotations

import http.client
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI
from segserve_client.protocol.wire import decode
from starlette.types import Receive, Scope, Send

from app.routes import batches
from tests.app.conftest import READY_SECONDS, MakeApp, wait_ready

# Frames of about 13 MiB (1 x 3 x 1024 x 1024 float32 + label): far more than the
# socket buffers hold, so the server can only run ahead by its prefetch.
STREAM = "/v1/splits/train/epochs/0?height=1024&width=1024&small=pad&batch_size=1&dtype=float32"
PREFETCH = 1


class StreamEnded:
    """Wraps an app; ``ended`` is set when the server has finished answering an epoch stream."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.ended = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and "/epochs/" in scope["path"]:
                self.ended.set()


@contextmanager
def live_server(app: StreamEnded) -> Iterator[int]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a thread; yield its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections queue up until the server accepts them: no start-up wait
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(READY_SECONDS)
        sock.close()


def _built(app: FastAPI) -> float:
    value = app.state.services.metrics.registry.get_sample_value(
        "segserve_batches_built_total", {"split": "train"}
    )
    return float(value or 0.0)


def test_disconnect_stops_the_stream(make_app: MakeApp) -> None:
    app = make_app(stream_prefetch=PREFETCH)
    wrapped = StreamEnded(app)
    with live_server(wrapped) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=READY_SECONDS)
        connection.request("GET", "/readyz")
        connection.getresponse().read()
        wait_ready(app)
        connection.request("GET", STREAM)
        response = connection.getresponse()
        assert response.status == 200
        total = int(response.headers["x-batch-count"])
        length = int.from_bytes(response.read(8), "little")
        tensors, metadata = decode(response.read(length))
        connection.close()  # hang up after the first frame
        assert wrapped.ended.wait(READY_SECONDS), "the server did not notice the disconnect"
        built = _built(app)
        registry = app.state.services.metrics.registry
        streams = registry.get_sample_value("segserve_epoch_streams_in_progress")
    assert metadata["batch"] == "0"
    assert tensors["image"].shape == (1, 3, 1024, 1024)
    assert total == 14
    # sent, being sent, built ahead (prefetch), and the one a worker thread was finishing
    assert 1 <= built <= 1 + 1 + PREFETCH + 1 < total
    assert _built(app) == built
    assert streams == 0


def test_a_frame_longer_or_shorter_than_announced_ends_the_stream_there(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A raw frame that differs from its announced length (a defect) is never sent: the
    stream ends before it, short of its Content-Length, and the fault is logged."""
    monkeypatch.setattr(batches, "raw_batch_nbytes", lambda *args: 1000)
    app = make_app()
    with live_server(StreamEnded(app)) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=READY_SECONDS)
        connection.request("GET", "/readyz")
        connection.getresponse().read()
        wait_ready(app)
        with caplog.at_level(logging.ERROR, logger="app.streams"):
            connection.request("GET", STREAM)
            response = connection.getresponse()
            assert response.status == 200
            assert int(response.headers["content-length"]) == 14 * (8 + 1000)
            with pytest.raises(http.client.IncompleteRead) as cut:
                response.read()
        connection.close()
    assert cut.value.partial == b""
    assert "1000 were announced" in caplog.text

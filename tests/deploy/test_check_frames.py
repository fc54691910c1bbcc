"""The container check's epoch-stream reader: a stream cut between two frames is broken,
not finished, when its Content-Length says more was to come."""

from __future__ import annotations

import http.client
import importlib.util
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

_TOOL = Path(__file__).parents[2] / "tools" / "container" / "check_deployment.py"


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_deployment", _TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _framed(tool: ModuleType, *frames: bytes) -> bytes:
    return b"".join(tool.LENGTH.pack(len(frame)) + frame for frame in frames)


@contextmanager
def _response(body: bytes, declared: int | None) -> Iterator[http.client.HTTPResponse]:
    """A response whose peer sends ``body`` (declaring ``declared`` bytes, or none) and closes."""
    length = f"Content-Length: {declared}" if declared is not None else "Connection: close"
    server, client = socket.socketpair()

    def send() -> None:
        with server:
            server.sendall(f"HTTP/1.1 200 OK\r\n{length}\r\n\r\n".encode() + body)

    sender = threading.Thread(target=send)
    sender.start()
    with client:
        response = http.client.HTTPResponse(client)
        try:
            response.begin()
            yield response
        finally:
            response.close()
            sender.join()


def test_a_whole_stream_ends_cleanly(tool: ModuleType) -> None:
    body = _framed(tool, b"a" * 10, b"b" * 20)
    with _response(body, len(body)) as response:
        assert list(tool.frames(response)) == [b"a" * 10, b"b" * 20]


def test_a_stream_cut_between_frames_is_broken(tool: ModuleType) -> None:
    whole = _framed(tool, b"a" * 10, b"b" * 20)
    with _response(_framed(tool, b"a" * 10), len(whole)) as response:
        reader = tool.frames(response)
        assert next(reader) == b"a" * 10
        with pytest.raises(tool.StreamBrokenError, match="28 bytes short of its Content-Length"):
            next(reader)


def test_a_stream_cut_inside_a_frame_is_broken(tool: ModuleType) -> None:
    body = _framed(tool, b"a" * 10)[:-3]
    with (
        _response(body, None) as response,
        pytest.raises(tool.StreamBrokenError, match="frame cut at 7 of 10 bytes"),
    ):
        list(tool.frames(response))

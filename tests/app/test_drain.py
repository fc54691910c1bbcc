"""Rolling updates: SIGTERM to one of two live replicas (``segserve serve`` processes).

The replica drains: its epoch stream ends after a whole frame and the client
resumes on the other one; a trainer fetching batches from both loses and
repeats nothing. The servers are real processes on loopback ports; nothing
waits on a clock (every wait is for a process or a socket, with a bound).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from segserve_client import SegClient

from tests.client.live import LiveServer, free_port, run_server, tiny_voc

DRAIN_SECONDS = 30  # the bound of every wait for a draining replica to exit
# Frames of about 4 MiB (1 x 3 x 640 x 480 float32 + label): a few fill the socket
# buffers, so the stream is still being built when SIGTERM arrives.
STREAM: dict[str, Any] = {
    "height": 640,
    "width": 480,
    "small": "pad",
    "batch_size": 1,
    "dtype": "float32",
}
EPOCH: dict[str, int] = {"height": 32, "width": 48, "batch_size": 2, "seed": 5}


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_voc(tmp_path_factory.mktemp("voc"))


@contextmanager
def serve(data_root: Path, cache_dir: Path) -> Iterator[LiveServer]:
    """``segserve serve`` on a free port, ready; SIGKILLed at exit if it is still running."""
    port = free_port()
    env = {**os.environ, "SEGSERVE_DRAIN_SECONDS": str(DRAIN_SECONDS)}
    env.pop("SEGSERVE_API_TOKEN", None)
    command = [sys.executable, "-c", "import sys; from app.cli import main; sys.exit(main())"]
    command += ["serve", "--data-root", str(data_root), "--cache-dir", str(cache_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    cache_dir.mkdir(parents=True, exist_ok=True)
    log = cache_dir / "server.log"
    with run_server(command, env, "127.0.0.1", port, log, graceful=False) as server:
        yield server


@pytest.fixture
def replicas(voc_root: Path, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    with ExitStack() as stack:
        first = stack.enter_context(serve(voc_root, tmp_path / "a"))
        second = stack.enter_context(serve(voc_root, tmp_path / "b"))
        yield first, second


def exit_status(server: LiveServer) -> int:
    """Wait (bounded) for the process to exit; its exit status."""
    return server.process.wait(timeout=DRAIN_SECONDS + 10)


def test_sigterm_ends_a_stream_at_a_frame_boundary_and_the_client_resumes_elsewhere(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    draining, other = replicas
    with SegClient(other.url) as reference_client:
        expected = [b.index.copy() for b in reference_client.stream_epoch("train", 0, **STREAM)]
    with SegClient([draining.url, other.url], backoff=0.01) as client:
        stream = client.stream_epoch("train", 0, **STREAM)
        got = [next(stream).index.copy()]  # from the first replica, which then gets SIGTERM
        draining.process.send_signal(signal.SIGTERM)
        got += [batch.index.copy() for batch in stream]
        status = exit_status(draining)
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(expected))
    log = draining.log.read_text()
    assert "ends after a whole frame" in log, log[-3000:]
    assert status in (0, -signal.SIGTERM), log[-3000:]


def test_a_trainer_on_two_replicas_loses_and_repeats_nothing_when_one_drains(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    draining, other = replicas
    with SegClient(other.url) as reference_client:
        expected = [b.index.copy() for b in reference_client.iter_epoch("train", 0, **EPOCH)]
    with SegClient([draining.url, other.url], backoff=0.01) as client:
        batches = client.iter_epoch("train", 0, **EPOCH, prefetch=2)
        got = [next(batches).index.copy() for _ in range(3)]
        draining.process.send_signal(signal.SIGTERM)
        got += [batch.index.copy() for batch in batches]
        status = exit_status(draining)
    assert len(got) == len(expected) > 3
    for seen, wanted in zip(got, expected, strict=True):
        np.testing.assert_array_equal(seen, wanted)
    assert status in (0, -signal.SIGTERM), draining.log.read_text()[-3000:]

"""Live segserve processes for the client's tests, and the tiny dataset they serve."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.factories import SampleSpec, write_voc

CROP = (32, 48)  # height, width used by the client's tests
TRAIN_SIZE, TRAIN_SMALL = 26, 2  # samples in train.txt, of which too small for CROP
VAL_SIZE, VAL_SMALL = 8, 1
STARTUP_SECONDS = 60.0


def tiny_voc(root: Path) -> Path:
    """Write the test dataset: random sizes of at least CROP, except the first few per split."""
    rng = np.random.default_rng(7)
    specs: list[SampleSpec] = []
    splits: dict[str, list[str]] = {}
    for split, size, small in (("train", TRAIN_SIZE, TRAIN_SMALL), ("val", VAL_SIZE, VAL_SMALL)):
        names = [f"{split}_{i:03d}" for i in range(size)]
        for i, name in enumerate(names):
            height = int(rng.integers(CROP[0], 3 * CROP[0]))
            width = int(rng.integers(CROP[1], 3 * CROP[1]))
            if i < small:  # one side too short, the other long enough
                height, width = (CROP[0] - 1, width) if i % 2 == 0 else (height, CROP[1] - 3)
            classes = tuple(int(c) for c in rng.choice(np.arange(1, 21), 2, replace=False))
            specs.append(SampleSpec(name, height, width, classes=classes))
        splits[split] = names
    return write_voc(root, specs, splits)


@dataclass
class LiveServer:
    """A segserve process listening on ``url``."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL: the replica dies without closing anything."""
        self.process.kill()
        self.process.wait(timeout=30)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def start_server(
    data_root: Path, cache_dir: Path, token: str | None = None
) -> Iterator[LiveServer]:
    """Start ``uvicorn app.main:create_app`` on a free port; wait for /readyz; stop it at exit."""
    port = free_port()
    cache_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SEGSERVE_DATA_ROOT": str(data_root), "SEGSERVE_CACHE_DIR": str(cache_dir)}
    env.pop("SEGSERVE_API_TOKEN", None)
    if token is not None:
        env["SEGSERVE_API_TOKEN"] = token
    command = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with run_server(command, env, "127.0.0.1", port, cache_dir / "server.log") as server:
        yield server


@contextmanager
def run_server(
    command: list[str],
    env: dict[str, str],
    host: str,
    port: int,
    log: Path,
    *,
    graceful: bool = True,
) -> Iterator[LiveServer]:
    """Run ``command`` (a server on ``host:port``) logging to ``log``; yield it once ready.

    At exit a server still running is stopped: SIGTERM with up to 15 s to exit
    (then SIGKILL) when ``graceful``, else SIGKILL at once.
    """
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://{host}:{port}", process, log)
    try:
        wait_ready(server, host, port)
        yield server
    finally:
        if process.poll() is None:
            if graceful:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    server.kill()
            else:
                server.kill()


def wait_ready(server: LiveServer, host: str, port: int) -> None:
    """Poll /readyz until 200, the process exits, or STARTUP_SECONDS pass."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if _ready(host, port):
            return
        try:  # waits a little between polls, and notices a crashed server at once
            server.process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        break
    raise RuntimeError(f"segserve did not become ready:\n{server.log.read_text()[-3000:]}")


def _ready(host: str, port: int) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()

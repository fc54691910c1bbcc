"""A ``segserve serve`` subprocess on a free loopback port, timed to readiness."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.memory import ProcessMemory, tree_memory
from bench.netns import LOOPBACK, Link
from bench.protocol import stop_process

_POLL_SECONDS = 0.02


class ServerError(RuntimeError):
    """The server exited or did not become ready in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def segserve_command() -> list[str]:
    """The ``segserve`` entry point of this environment."""
    script = Path(sys.executable).with_name("segserve")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


class Server:
    """``segserve serve --data-root ROOT --cache-dir CACHE --workers N`` on 127.0.0.1,
    or where ``link`` says (an address in a namespace of the benchmark's own).

    ``ready_seconds`` is the time from starting the process to the first 200
    from ``/readyz``.
    """

    def __init__(
        self, root: Path, cache_dir: Path, workers: int, log: Path, link: Link = LOOPBACK
    ) -> None:
        self.port = free_port()
        self.host = link.host
        self.url = f"http://{self.host}:{self.port}"
        self.workers = workers
        self.cache_dir = cache_dir
        self.log = log
        arguments = ["serve", "--data-root", str(root), "--cache-dir", str(cache_dir)]
        arguments += ["--host", self.host, "--port", str(self.port), "--workers", str(workers)]
        environment = {**os.environ, "SEGSERVE_CACHE_DIR": str(cache_dir)}
        self._log_file = log.open("ab")
        self._started = time.perf_counter()
        self.process = subprocess.Popen(
            link.command([*segserve_command(), *arguments]),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
        self.ready_seconds = float("nan")

    def wait_ready(self, timeout: float) -> float:
        """Poll ``/readyz`` until it answers 200; the seconds since the process started."""
        deadline = self._started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"segserve exited with {self.process.returncode}; see {self.log}")
            if is_ready(self.port, self.host):
                self.ready_seconds = time.perf_counter() - self._started
                return self.ready_seconds
            time.sleep(_POLL_SECONDS)
        raise ServerError(f"segserve was not ready after {timeout:.0f} s; see {self.log}")

    def memory(self) -> list[ProcessMemory]:
        """Memory of the server's processes (the main one and its workers)."""
        return tree_memory(self.process.pid, self.cache_dir)

    def stop(self) -> None:
        """Terminate the server (and its workers), then close its log."""
        stop_process(self.process, grace=15.0)
        self._log_file.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_ready(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host``:``port`` answers ``/readyz`` with 200."""
    connection = http.client.HTTPConnection(host, port, timeout=2.0)
    try:
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()

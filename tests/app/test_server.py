"""``segserve serve --workers N``: workers forked from one parent, one socket, signals passed on."""

from __future__ import annotations

import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.factories import VOC_SAMPLES, VOC_SPLITS, write_voc

pytestmark = pytest.mark.slow
WAIT_SECONDS = 60.0


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def cmdline(pid: int) -> bytes:
    """The command line of ``pid``, as /proc holds it."""
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def ready(port: int) -> bool:
    """Whether 127.0.0.1:``port`` answers ``/readyz`` with 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def wait_until(process: subprocess.Popen[bytes], condition: Callable[[], bool]) -> None:
    """Poll ``condition`` until it holds; fails when the process exits or time runs out."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        try:  # waits a little between polls, and notices an exit at once
            process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"segserve exited with {process.returncode}")
    raise AssertionError("condition not met in time")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``segserve serve --workers 2`` on a free port, ready; stopped at teardown."""
    root = write_voc(tmp_path / "voc", VOC_SAMPLES, VOC_SPLITS)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSERVE_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    script = Path(sys.executable).with_name("segserve")
    command = [str(script), "serve", "--data-root", str(root), "--port", str(port)]
    command += ["--cache-dir", str(tmp_path / "cache"), "--workers", "2"]
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(process, lambda: ready(port) and len(children(process.pid)) == 2)
        yield process, port
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def test_workers_are_forked_from_the_parent(
    two_workers: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = two_workers
    workers = children(process.pid)
    assert len(workers) == 2
    # Forked, not spawned: a spawned worker runs `python -c "from multiprocessing..."`.
    assert {cmdline(pid) for pid in workers} == {cmdline(process.pid)}
    for _ in range(6):
        assert ready(port)


def test_a_dead_worker_is_replaced(two_workers: tuple[subprocess.Popen[bytes], int]) -> None:
    process, port = two_workers
    victim = min(children(process.pid))
    os.kill(victim, signal.SIGKILL)
    wait_until(process, lambda: victim not in children(process.pid))
    wait_until(process, lambda: len(children(process.pid)) == 2)
    wait_until(process, lambda: ready(port))


def test_sigterm_stops_every_worker(two_workers: tuple[subprocess.Popen[bytes], int]) -> None:
    process, _ = two_workers
    workers = children(process.pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=WAIT_SECONDS) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_workers_stop_when_the_parent_is_killed(
    two_workers: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, _ = two_workers
    workers = {pid: os.pidfd_open(pid) for pid in children(process.pid)}
    try:
        process.kill()
        process.wait(timeout=30)
        deadline = time.monotonic() + WAIT_SECONDS
        for pidfd in workers.values():  # readable once the process has exited
            readable, _, _ = select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
            assert readable, "a worker outlived its killed parent"
    finally:
        for pidfd in workers.values():
            os.close(pidfd)


def worker_of(port: int) -> tuple[str | None, str | None]:
    """``Segserve-Worker`` and ``Segserve-Workers`` of ``/healthz`` on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        return response.getheader("Segserve-Worker"), response.getheader("Segserve-Workers")
    finally:
        conn.close()


def test_each_worker_names_itself(two_workers: tuple[subprocess.Popen[bytes], int]) -> None:
    _, port = two_workers
    seen = set()
    for _ in range(60):  # each new connection goes to one worker or the other
        worker, count = worker_of(port)
        assert count == "2"
        assert worker is not None
        assert len(worker) == 8
        seen.add(worker)
        if len(seen) == 2:
            break
    assert len(seen) == 2

"""Emulated network links: a namespace, a veth pair and ``tc`` token buckets.

The trainer stays in the root namespace; the servers run in a namespace of the
benchmark's own (``NAMESPACE``), reached over a veth pair whose two ends carry
the only addresses used (``TRAINER_ADDRESS`` and ``SERVER_ADDRESS``, a /30 that
exists only on that pair). A link's bandwidth is a ``tbf`` qdisc on both ends'
egress, so requests and answers are each held to the rate; ``shape`` replaces
it in place, so the servers keep running from one link to the next. The veth
pair adds no delay of its own to speak of: these links have a bandwidth, not a
distance.

Everything is removed on the way out, also on failure, and leftovers of a
killed run are removed before a new one starts. Where it cannot work (not
root, no ``ip`` or ``tc``, no namespaces or no ``tbf`` in this kernel),
:func:`unavailable` says why, and the phase is skipped with that reason.

``python -m bench.netns source HOST PORT BYTES``: the sending side of
:func:`tcp_throughput` (run inside the namespace).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

NAMESPACE = "segserve-bench"
TRAINER_DEVICE = "sgbench0"
SERVER_DEVICE = "sgbench1"
TRAINER_ADDRESS = "10.213.93.1"
SERVER_ADDRESS = "10.213.93.2"
_PREFIX = 30
_TBF_LATENCY = "20ms"
_BURST_SECONDS = 0.004  # a bucket of 4 ms at the rate (at least 64 KiB): above a GSO burst
_COMMAND_TIMEOUT = 20.0


class LinkError(RuntimeError):
    """Setting up or shaping the emulated link failed."""


@dataclass(frozen=True)
class Link:
    """Where the trainer reaches the servers: ``name`` (``loopback``, ``1gbit``, ``10gbit``),
    the shaped rate in bits/s (0: not shaped), the servers' address, and their namespace."""

    name: str
    rate_bits: int
    host: str
    netns: str | None

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run where the servers run (inside the namespace, or as it is)."""
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [*prefix, *argv]

    def trainer_rx_bytes(self) -> int:
        """Bytes the trainer's end of the pair has received (0 for loopback: shared, unread)."""
        if self.netns is None:
            return 0
        path = f"/sys/class/net/{TRAINER_DEVICE}/statistics/rx_bytes"
        with open(path, encoding="ascii") as counter:
            return int(counter.read())


LOOPBACK = Link("loopback", 0, "127.0.0.1", None)


def link_name(rate_bits: int) -> str:
    """``1gbit``, ``10gbit``, ``500mbit`` ..."""
    if rate_bits % 10**9 == 0:
        return f"{rate_bits // 10**9}gbit"
    return f"{rate_bits // 10**6}mbit"


def unavailable() -> str | None:
    """Why links cannot be emulated here, or None when they can (tried for real)."""
    if os.geteuid() != 0:
        return "not root: network namespaces and tc need root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (iproute2)"
    try:
        with namespace():
            shape(100 * 10**6)
    except LinkError as error:
        return str(error)
    return None


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(argv), capture_output=True, text=True, check=False, timeout=_COMMAND_TIMEOUT
    )
    if check and done.returncode != 0:
        raise LinkError(f"`{' '.join(argv)}` failed: {done.stderr.strip() or done.returncode}")
    return done


def remove_leftovers() -> None:
    """Delete the benchmark's namespace and veth pair if a killed run left them."""
    if NAMESPACE in _run(["ip", "netns", "list"], check=False).stdout.split():
        _run(["ip", "netns", "delete", NAMESPACE], check=False)
    if os.path.exists(f"/sys/class/net/{TRAINER_DEVICE}"):
        _run(["ip", "link", "delete", TRAINER_DEVICE], check=False)


@contextlib.contextmanager
def namespace() -> Iterator[Link]:
    """The namespace and its veth pair, addressed and up, unshaped; removed afterwards."""
    remove_leftovers()
    inside = ["ip", "netns", "exec", NAMESPACE]
    try:
        _run(["ip", "netns", "add", NAMESPACE])
        _run(["ip", "link", "add", TRAINER_DEVICE, "type", "veth", "peer", "name", SERVER_DEVICE])
        _run(["ip", "link", "set", SERVER_DEVICE, "netns", NAMESPACE])
        _run(["ip", "addr", "add", f"{TRAINER_ADDRESS}/{_PREFIX}", "dev", TRAINER_DEVICE])
        _run([*inside, "ip", "addr", "add", f"{SERVER_ADDRESS}/{_PREFIX}", "dev", SERVER_DEVICE])
        _run(["ip", "link", "set", TRAINER_DEVICE, "up"])
        _run([*inside, "ip", "link", "set", SERVER_DEVICE, "up"])
        _run([*inside, "ip", "link", "set", "lo", "up"])
        yield Link("unshaped", 0, SERVER_ADDRESS, NAMESPACE)
    finally:
        remove_leftovers()


def tbf_arguments(rate_bits: int) -> list[str]:
    """``tc qdisc replace`` arguments of a token bucket at ``rate_bits`` bits/s."""
    burst = max(64 * 1024, int(rate_bits / 8 * _BURST_SECONDS))
    return ["root", "tbf", "rate", f"{rate_bits}bit", "burst", str(burst), "latency", _TBF_LATENCY]


def shape(rate_bits: int) -> Link:
    """Hold both directions of the pair to ``rate_bits`` bits/s; the link the trainer sees."""
    arguments = tbf_arguments(rate_bits)
    _run(["tc", "qdisc", "replace", "dev", TRAINER_DEVICE, *arguments])
    _run(
        [
            "ip",
            "netns",
            "exec",
            NAMESPACE,
            "tc",
            "qdisc",
            "replace",
            "dev",
            SERVER_DEVICE,
            *arguments,
        ]
    )
    return Link(link_name(rate_bits), rate_bits, SERVER_ADDRESS, NAMESPACE)


def tcp_throughput(link: Link, seconds: float = 2.0) -> float:
    """Bits/s of one TCP stream from the server's side to the trainer over ``link``:
    ``seconds`` worth of bytes at the link's rate (1 GB when unshaped), timed at the trainer."""
    nbytes = int((link.rate_bits or 8 * 10**9) / 8 * seconds)
    port = _free_port()
    source = [sys.executable, "-m", "bench.netns", "source", link.host, str(port), str(nbytes)]
    process = subprocess.Popen(link.command(source), stdout=subprocess.PIPE, text=True)
    try:
        if process.stdout is None or process.stdout.readline().strip() != "listening":
            raise LinkError("the TCP source did not start")
        received, started = 0, time.perf_counter()
        with socket.create_connection((link.host, port), timeout=30.0) as connection:
            while chunk := connection.recv(1 << 20):
                received += len(chunk)
        elapsed = time.perf_counter() - started
    finally:
        process.wait(timeout=30.0)
    if received != nbytes:
        raise LinkError(f"the TCP source sent {received} of {nbytes} bytes")
    return received * 8 / elapsed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _source(host: str, port: int, nbytes: int) -> None:
    """Accept one connection on ``host:port``, send ``nbytes`` zero bytes, close."""
    with socket.create_server((host, port)) as server:
        print("listening", flush=True)
        server.settimeout(30.0)
        connection, _ = server.accept()
        with connection:
            block = bytes(1 << 20)
            left = nbytes
            while left > 0:
                left -= connection.send(memoryview(block)[: min(left, len(block))])


if __name__ == "__main__":
    if sys.argv[1:2] != ["source"] or len(sys.argv) != 5:
        sys.exit("usage: python -m bench.netns source HOST PORT BYTES")
    _source(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))

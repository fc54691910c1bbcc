"""Client-side spreading over a multi-address name: three replicas on 127.0.0.2-4, one port.

The name ``segserve-pods.test`` stands for a headless Service: an injected
resolver gives the three loopback addresses, as cluster DNS would give the
pods'. Every address is a replica: batches are spread over all of them, the
epoch survives one being killed, and a name whose answer changes brings new
replicas in and lets gone ones leave.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from segserve_client import SegClient
from segserve_client.batch import Batch
from segserve_client.resolver import AddressReplica

from tests.client.live import CROP, TRAIN_SIZE, TRAIN_SMALL, LiveServer, run_server

NAME = "segserve-pods.test"
ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
BATCH = 2
USABLE = list(range(TRAIN_SMALL, TRAIN_SIZE))
HEIGHT, WIDTH = CROP

pytestmark = pytest.mark.slow


def shared_port(addresses: tuple[str, ...], tries: int = 20) -> int:
    """A port that is free on every one of ``addresses`` right now."""
    for _ in range(tries):
        with socket.socket() as first:
            first.bind((addresses[0], 0))
            port: int = first.getsockname()[1]
            if all(_free(address, port) for address in addresses[1:]):
                return port
    raise RuntimeError(f"no port free on all of {addresses}")


def _free(address: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((address, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
        return True


@contextmanager
def replica(root: Path, cache: Path, address: str, port: int) -> Iterator[LiveServer]:
    """``segserve serve`` on ``address:port``, ready; stopped at exit."""
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SEGSERVE_DATA_ROOT": str(root), "SEGSERVE_CACHE_DIR": str(cache)}
    env.pop("SEGSERVE_API_TOKEN", None)
    command = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
    command += ["--host", address, "--port", str(port), "--log-level", "warning"]
    log = cache / f"server-{address}.log"
    with run_server(command, env, address, port, log) as server:
        yield server


Trio = tuple[int, list[LiveServer]]


@contextmanager
def three_replicas(root: Path, cache: Path) -> Iterator[Trio]:
    """Three replicas of the data set, on 127.0.0.2, .3 and .4, all on one port."""
    port = shared_port(ADDRESSES)
    with ExitStack() as stack:
        servers = [stack.enter_context(replica(root, cache, a, port)) for a in ADDRESSES]
        yield port, servers


@pytest.fixture(scope="module")
def trio(voc_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    """Three replicas that every test of the module shares (none of them stops one)."""
    with three_replicas(voc_root, tmp_path_factory.mktemp("trio")) as replicas:
        yield replicas


@pytest.fixture
def doomed_trio(voc_root: Path, tmp_path: Path) -> Iterator[Trio]:
    """Three replicas of the test's own, one of which it kills."""
    with three_replicas(voc_root, tmp_path / "cache") as replicas:
        yield replicas


class Dns:
    """The injected resolver: ``NAME`` resolves to ``answer``."""

    def __init__(self, answer: list[str]) -> None:
        self.answer = answer

    def __call__(self, host: str, port: int) -> list[str]:
        if host != NAME:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.answer)


def _copy(batch: Batch) -> dict[str, bytes]:
    return {name: batch[name].tobytes() for name in ("image", "label", "index", "rect")}


def _reference(port: int) -> list[dict[str, bytes]]:
    """The epoch from one replica asked by address."""
    with SegClient(f"http://{ADDRESSES[0]}:{port}") as direct:
        epoch = direct.iter_epoch("train", 0, BATCH, HEIGHT, WIDTH, prefetch=2)
        return [_copy(batch) for batch in epoch]


def test_batches_are_spread_over_every_address(trio: Trio) -> None:
    port, _ = trio
    with SegClient(f"http://{NAME}:{port}", resolver=Dns(list(ADDRESSES))) as client:
        assert len(client.replicas) == 3
        served: list[str] = []
        for number in range(6):
            i = client.replicas.pick(number)
            replica = client.replicas.replicas[i]
            assert isinstance(replica, AddressReplica)
            served.append(replica.address)
            client.batch("train", number, height=HEIGHT, width=WIDTH, batch_size=BATCH)
        assert sorted(set(served)) == sorted(ADDRESSES)
        assert client.replicas.healthy() == [True, True, True]


def test_epoch_survives_a_replica_killed_mid_epoch(doomed_trio: Trio) -> None:
    port, servers = doomed_trio
    reference = _reference(port)
    with SegClient(f"http://{NAME}:{port}", resolver=Dns(list(ADDRESSES)), backoff=60.0) as client:
        got: list[dict[str, bytes]] = []
        for batch in client.iter_epoch("train", 0, BATCH, HEIGHT, WIDTH, prefetch=3):
            got.append(_copy(batch))
            if len(got) == 2:
                servers[1].kill()
        assert servers[1].process.returncode is not None
        assert client.replicas.healthy() == [True, False, True]
    indices = sorted(int(i) for b in got for i in _int64s(b["index"]))
    assert indices == USABLE
    assert got == reference


def _int64s(data: bytes) -> list[int]:
    return [int.from_bytes(data[k : k + 8], "little", signed=True) for k in range(0, len(data), 8)]


def test_new_addresses_join_and_gone_ones_leave(trio: Trio) -> None:
    port, _ = trio
    dns = Dns([ADDRESSES[0]])
    with SegClient(f"http://{NAME}:{port}", resolver=dns) as client:
        client.replicas.resolve_interval = 0.0  # re-resolve before every pick
        client.batch("train", 0, height=HEIGHT, width=WIDTH, batch_size=BATCH)
        assert len(client.replicas) == 1
        dns.answer = [ADDRESSES[1], ADDRESSES[2]]  # a roll-out replaced the pod by two
        for number in range(4):
            client.batch("train", number, height=HEIGHT, width=WIDTH, batch_size=BATCH)
        active = {
            r.address
            for i, r in enumerate(client.replicas.replicas)
            if isinstance(r, AddressReplica) and i != 0
        }
        assert len(client.replicas) == 2
        assert active == {ADDRESSES[1], ADDRESSES[2]}
        assert all(client.replicas.pick(hint) != 0 for hint in range(4))

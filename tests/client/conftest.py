"""Fixtures of the client's tests: scripted fake servers, a fake clock, live servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from segserve_client import SegClient
from segserve_client.protocol import wire

from tests.client.fakeserver import FakeServer, Reply, Request
from tests.client.live import LiveServer, start_server, tiny_voc


class FakeClock:
    """A monotonic clock that only moves when ``sleep`` is called; records the sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Record ``seconds`` and move the clock on by as much."""
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A fresh fake clock."""
    return FakeClock()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Request], Reply]], FakeServer]]:
    """Start fake servers; each stops at teardown."""
    with ExitStack() as stack:
        yield lambda answer: stack.enter_context(FakeServer(answer))


@pytest.fixture
def make_client(clock: FakeClock) -> Iterator[Callable[..., SegClient]]:
    """``make_client(url, **kwargs)``: a SegClient on the fake clock, closed at teardown."""
    with ExitStack() as stack:

        def make(url: str | list[str], **kwargs: Any) -> SegClient:
            options: dict[str, Any] = {
                "sleep": clock.sleep,
                "clock": clock,
                "random": lambda: 0.0,  # no jitter unless a test asks for it
                "timeout": 10.0,
            }
            options.update(kwargs)
            return stack.enter_context(SegClient(url, **options))

        yield make


def batch_body(number: int, n: int = 2, height: int = 4, width: int = 6) -> bytes:
    """A safetensors batch whose pixels encode ``number``, as the server would send it."""
    rng = np.random.default_rng(number)
    tensors: dict[str, npt.NDArray[Any]] = {
        "image": rng.integers(0, 256, (n, height, width, 3), dtype=np.uint8),
        "label": rng.integers(0, 21, (n, height, width), dtype=np.uint8),
        "index": np.arange(number * n, number * n + n, dtype=np.int64),
        "rect": np.zeros((n, 4), dtype=np.int32),
    }
    metadata = {"split": "train", "seed": "0", "epoch": "0", "batch": str(number)}
    return wire.encode(tensors, metadata).tobytes()


@pytest.fixture(scope="session")
def voc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny VOC dataset: 13 train samples (3 too small for 32 x 48), 6 val samples."""
    return tiny_voc(tmp_path_factory.mktemp("voc"))


@pytest.fixture(scope="session")
def live(voc_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live segserve (uvicorn subprocess) on 127.0.0.1 serving ``voc_root``."""
    with start_server(voc_root, tmp_path_factory.mktemp("cache")) as server:
        yield server


@pytest.fixture
def live_pair(voc_root: Path, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two live replicas of the same dataset (separate caches), stopped at teardown."""
    with (
        start_server(voc_root, tmp_path / "cache-a") as a,
        start_server(voc_root, tmp_path / "cache-b") as b,
    ):
        yield a, b

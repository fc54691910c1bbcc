"""Start-up that tells: /readyz gives the loading phase with done / total; the log, each phase."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.main import create_app_with_config
from app.state import DatasetLoader
from service.config import Settings
from service.progress import Advance, Progress
from tests.app.conftest import READY_SECONDS, TestClient, wait_ready


class GatedProgress(Progress):
    """Holds the loading thread after its first step of a phase until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(bar=False)
        self.stepped = threading.Event()
        self.gate = threading.Event()

    @contextmanager
    def phase(self, name: str, total: int, unit: str) -> Iterator[Advance]:
        with super().phase(name, total, unit) as advance:

            def gated(count: int) -> None:
                advance(count)
                if not self.gate.is_set():
                    self.stepped.set()
                    assert self.gate.wait(READY_SECONDS), "the test never opened the gate"

            yield gated


def test_readyz_names_the_phase_and_its_progress_while_loading(
    voc_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_root=voc_root, cache_dir=tmp_path / "cold")  # nothing decoded yet
    app = create_app_with_config(settings)
    progress = GatedProgress()
    app.state.services.loader = DatasetLoader(settings, progress)
    caplog.set_level(logging.INFO)
    with TestClient(app) as client:
        assert progress.stepped.wait(READY_SECONDS)
        loading = client.get("/readyz")
        progress.gate.set()
        wait_ready(app)
        ready = client.get("/readyz")
    assert loading.status_code == 503
    assert int(loading.headers["retry-after"]) > 0
    detail = loading.json()["detail"]
    match = re.search(r"still loading: decoding (\d+) / (\d+) images", detail)
    assert match, detail
    done, total = int(match[1]), int(match[2])
    assert 0 < done < total
    assert ready.status_code == 200
    messages = [record.getMessage() for record in caplog.records]
    assert f"decoding: {total} images" in messages
    assert any(re.fullmatch(rf"decoding: {total} images in [\d.]+ s", m) for m in messages)
    assert any("ready in" in m and "API docs at http://127.0.0.1:8000/docs" in m for m in messages)


def test_the_demo_phase_is_reported_too(tmp_path: Path) -> None:
    from service.demo import write_demo

    seen: list[str | None] = []
    progress = Progress()

    class Watching(Progress):
        @contextmanager
        def phase(self, name: str, total: int, unit: str) -> Iterator[Callable[[int], None]]:
            with progress.phase(name, total, unit) as advance:

                def watched(count: int) -> None:
                    advance(count)
                    seen.append(progress.describe())

                yield watched

    write_demo(tmp_path / "demo", train=3, val=2, progress=Watching())
    assert seen[-1] == "generating demo data 5 / 5 images"
    assert progress.describe() is None

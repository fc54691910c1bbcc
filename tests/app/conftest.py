"""Fixtures of the HTTP tests: a tiny VOC dataset on disk, apps over it, running clients.

The dataset (`voc_root`) has mixed sizes around the test crop `CROP` (some
samples too small for it), label PNGs stored both as VOC palette images and as
RGB colour images, and one sample whose label file is corrupt (excluded).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI

from app.main import create_app_with_config
from service.config import Settings
from service.dataset import open_dataset
from service.voc import LABEL_DIR, LABEL_SUFFIX
from tests.factories import SampleSpec, corrupt_file, label_of, label_picture, write_voc

with warnings.catch_warnings():
    # starlette's test client announces a move from httpx to httpx2 on import; the
    # project pins httpx, and the warning says nothing about the code under test.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CROP = (32, 48)  # height, width of the crops these tests ask for
BROKEN = "2008_000666"  # listed in train.txt, its label file is not a picture
READY_SECONDS = 60.0

MakeApp = Callable[..., FastAPI]


def _samples() -> tuple[list[SampleSpec], dict[str, list[str]]]:
    """14 train and 6 val samples, sizes 24..95 x 32..111; a few smaller than CROP."""
    rng = np.random.default_rng(2012)
    specs, splits = [], {}
    for split, size, year in (("train", 14, 2007), ("val", 6, 2009)):
        names = [f"{year}_{i:06d}" for i in range(size)]
        for name in names:
            height, width = int(rng.integers(24, 96)), int(rng.integers(32, 112))
            classes = tuple(int(c) for c in rng.choice(np.arange(1, 21), 2, replace=False))
            specs.append(SampleSpec(name, height, width, classes=classes))
        splits[split] = names
    return specs, splits


@pytest.fixture(scope="session")
def voc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test dataset: palette labels, every third label re-saved as RGB, one broken label."""
    specs, splits = _samples()
    broken = SampleSpec(BROKEN, 60, 80)
    root = write_voc(tmp_path_factory.mktemp("voc"), [*specs, broken], splits)
    for spec in specs[::3]:
        label_picture(label_of(spec), "RGB").save(root / LABEL_DIR / f"{spec.name}{LABEL_SUFFIX}")
    corrupt_file(root / LABEL_DIR / f"{BROKEN}{LABEL_SUFFIX}")
    with (root / "ImageSets/Segmentation/train.txt").open("a") as split_file:
        split_file.write(f"{BROKEN}\n")
    return root


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory, voc_root: Path) -> Path:
    """A decoded cache of `voc_root`, built once so that every app starts warm."""
    directory = tmp_path_factory.mktemp("cache")
    open_dataset(voc_root, directory, workers=1)
    return directory


@pytest.fixture(autouse=True)
def _no_segserve_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the tests alone, and what a test (or the CLI) sets is undone after it."""
    names = [f"SEGSERVE_{field.upper()}" for field in Settings.model_fields]
    for name in [*names, "PROMETHEUS_MULTIPROC_DIR"]:
        monkeypatch.setenv(name, "")  # records the value to restore, then
        monkeypatch.delenv(name)  # the test starts without it


@pytest.fixture
def make_settings(voc_root: Path, cache_dir: Path) -> Callable[..., Settings]:
    """Settings over the test dataset, with any field overridden."""

    def make(**overrides: Any) -> Settings:
        return Settings(**{"data_root": voc_root, "cache_dir": cache_dir, **overrides})

    return make


@pytest.fixture
def make_app(make_settings: Callable[..., Settings]) -> MakeApp:
    """A new app over the test dataset (lifespan not started yet)."""

    def make(**overrides: Any) -> FastAPI:
        return create_app_with_config(make_settings(**overrides))

    return make


def wait_ready(app: FastAPI) -> None:
    """Block until the app's dataset has loaded (or failed), within a bound."""
    assert app.state.services.loader.wait(READY_SECONDS), "dataset did not load in time"


@pytest.fixture
def client(make_app: MakeApp) -> Iterator[TestClient]:
    """A client of a running app whose dataset is loaded."""
    app = make_app()
    with TestClient(app) as test_client:
        wait_ready(app)
        yield test_client


__all__ = ["CROP", "TestClient", "wait_ready"]

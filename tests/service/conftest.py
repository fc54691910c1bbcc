"""Fixtures of the engine's tests: in-memory sources, tiny VOC-layout roots and their caches."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.dataset import Dataset, open_dataset
from tests.factories import VOC_SAMPLES, VOC_SPLITS, write_voc
from tests.service.memsource import MemorySource, coded_source


@pytest.fixture
def mem_source() -> MemorySource:
    """Twelve coded samples of mixed sizes (12..40 px), five of them at least 20 x 20."""
    sizes = [(30, 38), (12, 40), (40, 12), (20, 20), (25, 33), (19, 40),
             (40, 19), (33, 25), (16, 16), (22, 39), (38, 22), (12, 12)]  # fmt: skip
    return coded_source(sizes, seed=2)


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    """A data root ``VOC2012`` with `VOC_SAMPLES` (palette labels) and the `VOC_SPLITS` files."""
    return write_voc(tmp_path / "VOC2012", VOC_SAMPLES, VOC_SPLITS)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A folder for decoded caches (created on first use)."""
    return tmp_path / "cache"


@pytest.fixture
def voc_dataset(voc_root: Path, cache_dir: Path) -> Dataset:
    """`voc_root` opened over a fresh cache."""
    return open_dataset(voc_root, cache_dir)

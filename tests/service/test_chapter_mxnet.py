"""The chapter's own MXNet pipeline and the engine agree on the same files.

The chapter's code (:mod:`tests.chapter`, verbatim) reads every picture with
``mxnet.image.imread`` (OpenCV), maps label colours through
``build_colormap2label`` / ``voc_label_indices`` and keeps the samples at least
as large as the crop. On the same data root the engine must give the same class
indices under ``void=background``, the same images, and the same number of
samples passing the filter.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy
import pytest

from service.dataset import Dataset, open_dataset
from service.labels import apply_void
from tests.factories import SampleSpec, write_voc

pytestmark = pytest.mark.mxnet

pytest.importorskip("mxnet", reason="needs the mxnet extra")

SAMPLES = [
    SampleSpec(f"2008_{i:06d}", 30 + 9 * (i % 4), 40 + 7 * (i % 5), classes=(1 + i % 20, 15))
    for i in range(12)
]
SPLITS = {"train": [s.name for s in SAMPLES[:8]], "val": [s.name for s in SAMPLES[6:]]}
CROP_SIZES = [(30, 40), (39, 47), (40, 50), (48, 60), (57, 54), (58, 68)]


@pytest.fixture(scope="module", params=["P", "RGB"])
def data_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp(f"voc-{request.param}")
    return write_voc(root, SAMPLES, SPLITS, label_mode=request.param)


@pytest.fixture(scope="module")
def chapter(data_root: Path, d2l: ModuleType) -> dict[str, Any]:
    """Split -> (features, labels) as the chapter's read_voc_images returns them."""
    return {
        "train": d2l.read_voc_images(str(data_root), True),
        "val": d2l.read_voc_images(str(data_root), False),
    }


@pytest.fixture(scope="module")
def engine(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return open_dataset(data_root, tmp_path_factory.mktemp("cache"))


@pytest.mark.parametrize("split", ["train", "val"])
def test_labels_equal_the_chapter_under_void_background(
    d2l: ModuleType, chapter: dict[str, Any], engine: Dataset, split: str
) -> None:
    colormap2label = d2l.build_colormap2label()
    _, labels = chapter[split]
    served = engine.split(split)
    assert len(labels) == len(served)
    for i, label in enumerate(labels):
        indices = d2l.voc_label_indices(label, colormap2label).asnumpy()
        numpy.testing.assert_array_equal(apply_void(served.label(i), "background"), indices)


@pytest.mark.parametrize("split", ["train", "val"])
def test_images_equal_the_chapter(chapter: dict[str, Any], engine: Dataset, split: str) -> None:
    features, _ = chapter[split]
    served = engine.split(split)
    for i, feature in enumerate(features):
        # OpenCV's and Pillow's libjpeg builds may round the inverse DCT differently.
        numpy.testing.assert_allclose(served.image(i), feature.asnumpy(), atol=2, rtol=0)


@pytest.mark.parametrize("crop_size", CROP_SIZES)
@pytest.mark.parametrize("split", ["train", "val"])
def test_the_crop_filter_keeps_the_chapter_s_count(
    d2l: ModuleType, data_root: Path, engine: Dataset, split: str, crop_size: tuple[int, int]
) -> None:
    dataset = d2l.VOCSegDataset(split == "train", crop_size, str(data_root))
    served = engine.split(split)
    usable = (served.heights >= crop_size[0]) & (served.widths >= crop_size[1])
    assert len(dataset.features) == int(usable.sum())
    assert len(dataset.labels) == int(usable.sum())

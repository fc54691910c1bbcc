"""The chapter's own MXNet pipeline and the engine agree on the same files.

The chapter reads every picture with ``mxnet.image.imread`` (OpenCV), maps
label colours through ``voc_colormap2label`` / ``voc_label_indices`` and keeps
the samples at least as large as the crop. On the same data root the engine
must give the same class indices under ``void=background``, the same images,
and the same number of samples passing the filter.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest

from service.dataset import Dataset, open_dataset
from service.labels import apply_void
from service.voc import VOC_COLORMAP
from tests.factories import SampleSpec, write_voc

pytestmark = pytest.mark.mxnet

pytest.importorskip("mxnet", reason="needs the mxnet extra")
from mxnet import image, np, npx  # noqa: E402

SAMPLES = [
    SampleSpec(f"2008_{i:06d}", 30 + 9 * (i % 4), 40 + 7 * (i % 5), classes=(1 + i % 20, 15))
    for i in range(12)
]
SPLITS = {"train": [s.name for s in SAMPLES[:8]], "val": [s.name for s in SAMPLES[6:]]}
CROP_SIZES = [(30, 40), (39, 47), (40, 50), (48, 60), (57, 54), (58, 68)]


# The chapter's code, verbatim (`np` is mxnet.np after npx.set_np()).
# fmt: off
def read_voc_images(voc_dir, is_train=True):  # type: ignore[no-untyped-def]
    """Read all VOC feature and label images."""
    txt_fname = os.path.join(voc_dir, 'ImageSets', 'Segmentation',
                             'train.txt' if is_train else 'val.txt')
    with open(txt_fname, 'r') as f:  # noqa: UP015
        images = f.read().split()
    features, labels = [], []
    for i, fname in enumerate(images):  # noqa: B007
        features.append(image.imread(os.path.join(
            voc_dir, 'JPEGImages', f'{fname}.jpg')))
        labels.append(image.imread(os.path.join(
            voc_dir, 'SegmentationClass', f'{fname}.png')))
    return features, labels


def voc_colormap2label():  # type: ignore[no-untyped-def]
    """Build the mapping from RGB to class indices for VOC labels."""
    colormap2label = np.zeros(256 ** 3)
    for i, colormap in enumerate(VOC_COLORMAP):
        colormap2label[
            (colormap[0] * 256 + colormap[1]) * 256 + colormap[2]] = i
    return colormap2label


def voc_label_indices(colormap, colormap2label):  # type: ignore[no-untyped-def]
    """Map any RGB values in VOC labels to their class indices."""
    colormap = colormap.astype(np.int32)
    idx = ((colormap[:, :, 0] * 256 + colormap[:, :, 1]) * 256
           + colormap[:, :, 2])
    return colormap2label[idx]


class ChapterFilter:
    def __init__(self, crop_size):  # type: ignore[no-untyped-def]
        self.crop_size = crop_size

    def filter(self, imgs):  # type: ignore[no-untyped-def]
        return [img for img in imgs if (
            img.shape[0] >= self.crop_size[0] and
            img.shape[1] >= self.crop_size[1])]
# fmt: on


@pytest.fixture(scope="module")
def numpy_semantics() -> Iterator[None]:
    """The chapter's ``npx.set_np()``, undone afterwards for other MXNet tests."""
    npx.set_np()
    yield
    npx.reset_np()


@pytest.fixture(scope="module", params=["P", "RGB"])
def data_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp(f"voc-{request.param}")
    return write_voc(root, SAMPLES, SPLITS, label_mode=request.param)


@pytest.fixture(scope="module")
def chapter(data_root: Path, numpy_semantics: None) -> dict[str, Any]:
    """Split -> (features, labels) as the chapter's read_voc_images returns them."""
    return {
        "train": read_voc_images(str(data_root), True),  # type: ignore[no-untyped-call]
        "val": read_voc_images(str(data_root), False),  # type: ignore[no-untyped-call]
    }


@pytest.fixture(scope="module")
def engine(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return open_dataset(data_root, tmp_path_factory.mktemp("cache"))


@pytest.mark.parametrize("split", ["train", "val"])
def test_labels_equal_the_chapter_under_void_background(
    chapter: dict[str, Any], engine: Dataset, split: str
) -> None:
    colormap2label = voc_colormap2label()  # type: ignore[no-untyped-call]
    _, labels = chapter[split]
    served = engine.split(split)
    assert len(labels) == len(served)
    for i, label in enumerate(labels):
        indices = voc_label_indices(label, colormap2label).asnumpy()  # type: ignore[no-untyped-call]
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
    chapter: dict[str, Any], engine: Dataset, split: str, crop_size: tuple[int, int]
) -> None:
    features, labels = chapter[split]
    chapter_filter: Any = ChapterFilter(crop_size)  # type: ignore[no-untyped-call]
    served = engine.split(split)
    usable = (served.heights >= crop_size[0]) & (served.widths >= crop_size[1])
    assert len(chapter_filter.filter(features)) == int(usable.sum())
    assert len(chapter_filter.filter(labels)) == int(usable.sum())

"""The natural-photograph data set: VOC layout, labels, file sizes, determinism."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import natural
from bench.natural import (
    PHOTOS,
    SIZES,
    decode_jpeg,
    encode_jpeg,
    ensure_natural,
    missing_reason,
    natural_crop_samples,
    natural_crops,
    natural_sample,
    write_natural,
)
from service.dataset import open_dataset
from service.voc import IGNORE_INDEX, voc_palette

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))

TRAIN, VAL = 12, 4


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_natural(tmp_path_factory.mktemp("natural"), train=TRAIN, val=VAL, seed=3)


def test_layout_and_splits(root: Path) -> None:
    splits = root / "ImageSets" / "Segmentation"
    train = (splits / "train.txt").read_text().splitlines()
    val = (splits / "val.txt").read_text().splitlines()
    assert (len(train), len(val)) == (TRAIN, VAL)
    assert (splits / "trainval.txt").read_text().splitlines() == train + val
    for name in train + val:
        assert (root / "JPEGImages" / f"{name}.jpg").is_file()
        with Image.open(root / "SegmentationClass" / f"{name}.png") as label:
            assert label.mode == "P"
            palette = label.getpalette()
            assert palette is not None
            assert palette[: 3 * 21] == voc_palette()[: 3 * 21]


def test_files_decode_to_the_samples(root: Path) -> None:
    name = (root / "ImageSets/Segmentation/train.txt").read_text().split()[5]
    image, label = natural_sample(3, 5)
    with Image.open(root / "SegmentationClass" / f"{name}.png") as png:
        np.testing.assert_array_equal(np.asarray(png), label)
    with Image.open(root / "JPEGImages" / f"{name}.jpg") as jpeg:
        assert jpeg.size == (image.shape[1], image.shape[0])
        decoded = np.asarray(jpeg.convert("RGB")).astype(np.float64)
    mse = np.mean((decoded - image) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30  # a faithful JPEG of the sample


def test_the_server_opens_it(root: Path, tmp_path: Path) -> None:
    dataset = open_dataset(root, tmp_path / "cache")
    assert len(dataset.split("train")) == TRAIN


def test_samples_are_deterministic_and_differ() -> None:
    first, label = natural_sample(0, 7)
    again, label_again = natural_sample(0, 7)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(label, label_again)
    assert not np.array_equal(natural_sample(1, 7)[0][:10], natural_sample(0, 7)[0][:10])


def test_labels_hold_the_subjects_and_a_border_band() -> None:
    allowed = {0, IGNORE_INDEX} | {cls for photo in PHOTOS for cls, _ in photo.objects}
    seen: set[int] = set()
    for index in range(20):
        image, label = natural_sample(0, index)
        assert image.shape[:2] == label.shape
        assert image.shape[:2] in SIZES
        values = set(np.unique(label).tolist())
        assert values <= allowed
        seen |= values
    assert IGNORE_INDEX in seen
    assert len(seen - {0, IGNORE_INDEX}) >= 3


def test_files_weigh_like_voc(root: Path) -> None:
    """About 4.6 bits per pixel (VOC2012: 4.7): between 3.5 and 6 on average."""
    files = sorted((root / "JPEGImages").iterdir())
    bits = []
    for path in files:
        with Image.open(path) as image:
            bits.append(path.stat().st_size * 8 / (image.width * image.height))
    assert 3.5 < float(np.mean(bits)) < 6.0


def test_crops() -> None:
    crops = natural_crops(3, 320, 480, seed=2)
    assert crops.shape == (3, 320, 480, 3)
    assert crops.dtype == np.uint8
    assert len({crop.tobytes() for crop in crops}) == 3
    with pytest.raises(ValueError, match="crop within"):
        natural_crops(1, 600, 480)


def test_crops_are_cut_at_random_offsets_of_the_stored_image() -> None:
    # A crop at (0, 0) keeps the stored JPEG's block grid and flatters re-encoding.
    samples = natural_crop_samples(8, 320, 480, seed=3)
    assert len({(top, left) for _, _, (top, left, _, _) in samples}) > 1
    assert any(top % 8 or left % 8 for _, _, (top, left, _, _) in samples)
    index = 0
    for image, label, (top, left, height, width) in samples:
        while True:  # the stored sample this crop came from (too small ones are skipped)
            stored, stored_label = natural_sample(3, index)
            index += 1
            if stored.shape[0] >= 320 and stored.shape[1] >= 480:
                break
        decoded = decode_jpeg(encode_jpeg(stored))
        assert (height, width) == (320, 480)
        window = np.s_[top : top + height, left : left + width]
        assert np.array_equal(image, decoded[window])
        assert np.array_equal(label, stored_label[window])
    assert np.array_equal(natural_crops(8, 320, 480, seed=3), np.stack([s[0] for s in samples]))


def test_ensure_writes_once(tmp_path: Path) -> None:
    path = ensure_natural(tmp_path, train=2, val=1, seed=0)
    stamp = (path / "ImageSets/Segmentation/train.txt").stat().st_mtime_ns
    assert ensure_natural(tmp_path, train=2, val=1, seed=0) == path
    assert (path / "ImageSets/Segmentation/train.txt").stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_missing_package_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda _name: None)
    assert "is not installed" in str(natural.missing_reason())
    with pytest.raises(natural.PhotosMissingError, match="is not installed"):
        write_natural(Path("unused"), train=1, val=1)

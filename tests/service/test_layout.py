"""Other layouts of the data set: SBD's trainaug (split folder, label folder, 'L' labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.state import load_dataset
from service.config import Settings
from service.dataset import open_dataset
from service.errors import DatasetError
from service.index import scan_voc
from tests.factories import VOC_SAMPLES, VOC_SPLITS, write_voc

AUG_LABELS = "SegmentationClassAug"
AUG_SPLITS = "ImageSets/SegmentationAug"
TRAINAUG = {"trainaug": [spec.name for spec in VOC_SAMPLES], "val": VOC_SPLITS["val"]}


@pytest.fixture
def sbd_root(tmp_path: Path) -> Path:
    """trainaug as SBD ships it: single-channel labels, split files in ImageSets/SegmentationAug."""
    return write_voc(
        tmp_path / "VOC2012",
        VOC_SAMPLES,
        TRAINAUG,
        label_mode="L",
        label_dir=AUG_LABELS,
        split_dir=AUG_SPLITS,
    )


def test_trainaug_decodes_like_palette_labels(sbd_root: Path, tmp_path: Path) -> None:
    palette_root = write_voc(tmp_path / "palette", VOC_SAMPLES, TRAINAUG)
    aug = open_dataset(sbd_root, tmp_path / "c1", AUG_LABELS, split_dir=AUG_SPLITS)
    voc = open_dataset(palette_root, tmp_path / "c2")
    assert sorted(aug.splits) == ["trainaug", "val"]
    trainaug = aug.split("trainaug")
    assert trainaug.ids == TRAINAUG["trainaug"]
    for i in range(len(trainaug)):
        assert np.array_equal(trainaug.label(i), voc.split("trainaug").label(i))
    assert np.array_equal(trainaug.class_pixels, voc.split("trainaug").class_pixels)


def test_the_default_split_folder_is_not_read(sbd_root: Path) -> None:
    with pytest.raises(DatasetError, match="no split file ImageSets/Segmentation/"):
        scan_voc(sbd_root, AUG_LABELS)
    with pytest.raises(DatasetError, match="no split file ImageSets/Other/"):
        scan_voc(sbd_root, AUG_LABELS, "ImageSets/Other")


def test_the_split_folder_enters_the_fingerprint(sbd_root: Path) -> None:
    (sbd_root / "ImageSets/Segmentation").mkdir(parents=True)
    for name, names in TRAINAUG.items():
        text = "".join(f"{n}\n" for n in names)
        (sbd_root / "ImageSets/Segmentation" / f"{name}.txt").write_text(text)
    default = scan_voc(sbd_root, AUG_LABELS)
    aug = scan_voc(sbd_root, AUG_LABELS, AUG_SPLITS)
    assert default.splits == aug.splits
    assert default.fingerprint != aug.fingerprint


def test_settings_name_both_folders(
    sbd_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGSERVE_DATA_ROOT", str(sbd_root))
    monkeypatch.setenv("SEGSERVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SEGSERVE_LABEL_DIR", AUG_LABELS)
    monkeypatch.setenv("SEGSERVE_SPLIT_DIR", AUG_SPLITS)
    dataset = load_dataset(Settings())
    assert len(dataset.split("trainaug")) == len(VOC_SAMPLES)

"""Indexing a data root: splits, paths, the not-a-VOC-layout error, the content fingerprint."""

from __future__ import annotations

import shutil
import string
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from service.errors import DatasetError
from service.index import scan_voc
from tests.factories import VOC_SPLITS, SampleSpec, bump_mtime, write_voc


def test_every_split_file_is_a_split_in_file_order(voc_root: Path) -> None:
    index = scan_voc(voc_root)
    assert dict(index.splits) == VOC_SPLITS
    assert index.sample_names == sorted({n for names in VOC_SPLITS.values() for n in names})


def test_split_lines_are_stripped_and_blank_lines_skipped(voc_root: Path) -> None:
    split_file = voc_root / "ImageSets/Segmentation/extra.txt"
    split_file.write_text("\n  b_1  \r\n\n\ta_2\n   \nc_3")
    assert scan_voc(voc_root).splits["extra"] == ["b_1", "a_2", "c_3"]


def test_paths_follow_the_layout_and_the_label_dir(voc_root: Path) -> None:
    index = scan_voc(voc_root, label_dir="SegmentationClassAug")
    assert index.image_path("x") == voc_root / "JPEGImages" / "x.jpg"
    assert index.label_path("x") == voc_root / "SegmentationClassAug" / "x.png"


def test_a_folder_without_split_files_is_not_a_voc_layout(tmp_path: Path) -> None:
    (tmp_path / "JPEGImages").mkdir()
    with pytest.raises(DatasetError, match=r"not a VOC layout.*ImageSets/Segmentation/\*\.txt"):
        scan_voc(tmp_path)


def test_the_error_points_at_the_voc2012_folder_below_an_archive_root(voc_root: Path) -> None:
    archive_root = voc_root.parent / "download"
    shutil.move(voc_root, archive_root / "VOCdevkit" / "VOC2012")
    with pytest.raises(DatasetError, match=r"did you mean .*VOCdevkit/VOC2012"):
        scan_voc(archive_root)


def test_a_missing_root_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        scan_voc(tmp_path / "nowhere")


@pytest.mark.parametrize("line", ["../secret", "/etc/passwd", "a/../../b", "..\\up"])
def test_names_leaving_the_root_are_refused(voc_root: Path, line: str) -> None:
    (voc_root / "ImageSets/Segmentation/bad.txt").write_text(f"2007_000032\n{line}\n")
    with pytest.raises(DatasetError, match=r"bad\.txt.*outside the data root"):
        scan_voc(voc_root)


def test_a_split_file_that_is_not_text_is_a_dataset_error(voc_root: Path) -> None:
    (voc_root / "ImageSets/Segmentation/broken.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DatasetError, match=r"broken.*not UTF-8"):
        scan_voc(voc_root)


def test_the_fingerprint_is_hex_and_stable(voc_root: Path) -> None:
    fingerprint = scan_voc(voc_root).fingerprint
    assert fingerprint
    assert set(fingerprint) <= set(string.hexdigits.lower())
    assert scan_voc(voc_root).fingerprint == fingerprint


def test_the_fingerprint_does_not_depend_on_where_the_root_is(voc_root: Path) -> None:
    copy = shutil.copytree(voc_root, voc_root.parent / "elsewhere")  # copy2 keeps mtimes
    assert scan_voc(copy).fingerprint == scan_voc(voc_root).fingerprint


def test_the_fingerprint_reads_no_picture(voc_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fingerprint must only stat the files")

    monkeypatch.setattr(Image, "open", refuse)
    assert scan_voc(voc_root).fingerprint


def _touch_image(root: Path) -> None:
    bump_mtime(root / "JPEGImages/2007_000039.jpg")


def _touch_label(root: Path) -> None:
    bump_mtime(root / "SegmentationClass/2007_000121.png")


def _grow_label(root: Path) -> None:
    with (root / "SegmentationClass/2007_000068.png").open("ab") as file:
        file.write(b"\0")


def _reorder_split(root: Path) -> None:
    path = root / "ImageSets/Segmentation/train.txt"
    path.write_text("".join(f"{n}\n" for n in reversed(VOC_SPLITS["train"])))


def _add_split(root: Path) -> None:
    (root / "ImageSets/Segmentation/test.txt").write_text("2007_000032\n")


def _remove_image(root: Path) -> None:
    (root / "JPEGImages/2007_000063.jpg").unlink()


@pytest.mark.parametrize(
    "change",
    [_touch_image, _touch_label, _grow_label, _reorder_split, _add_split, _remove_image],
)
def test_the_fingerprint_changes_with_the_content(
    voc_root: Path, change: Callable[[Path], None]
) -> None:
    before = scan_voc(voc_root).fingerprint
    change(voc_root)
    assert scan_voc(voc_root).fingerprint != before


def test_a_missing_file_that_appears_changes_the_fingerprint(voc_root: Path) -> None:
    (voc_root / "ImageSets/Segmentation/val.txt").write_text("2007_000068\nlate\n")
    before = scan_voc(voc_root).fingerprint
    write_voc(voc_root, [SampleSpec("late", 20, 20)], {})
    assert scan_voc(voc_root).fingerprint != before


def test_the_fingerprint_changes_with_the_label_dir(voc_root: Path) -> None:
    shutil.copytree(voc_root / "SegmentationClass", voc_root / "SegmentationClassAug")
    assert scan_voc(voc_root, "SegmentationClassAug").fingerprint != scan_voc(voc_root).fingerprint


def test_files_no_split_lists_do_not_change_the_fingerprint(voc_root: Path) -> None:
    before = scan_voc(voc_root).fingerprint
    write_voc(voc_root, [SampleSpec("unlisted", 20, 20)], {})
    (voc_root / "README").write_text("notes")
    assert scan_voc(voc_root).fingerprint == before

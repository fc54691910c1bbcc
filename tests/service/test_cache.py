"""The decoded cache: build once, warm starts, exclusions, concurrent builds, read-only maps."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from service.cache import IMAGES_FILE, MANIFEST_FILE, build_cache
from service.dataset import Dataset, open_dataset
from service.errors import DatasetError, NotFoundError
from service.index import scan_voc
from tests.factories import (
    VOC_SAMPLES,
    VOC_SPLITS,
    SampleSpec,
    bump_mtime,
    classes_from_image,
    corrupt_file,
    interior,
    label_of,
    label_picture,
    truncate_file,
    write_voc,
)

SPECS = {spec.name: spec for spec in VOC_SAMPLES}
SHARED = "2007_000032"  # listed by both train and val


def _content_digest(dataset: Dataset) -> str:
    digest = hashlib.sha256()
    for name in sorted(dataset.splits):
        split = dataset.splits[name]
        for i in range(len(split)):
            digest.update(f"{name}/{split.ids[i]}".encode())
            digest.update(split.image(i).tobytes())
            digest.update(split.label(i).tobytes())
    return digest.hexdigest()


def _cache_entries(cache_dir: Path) -> list[str]:
    return sorted(path.name for path in cache_dir.iterdir())


def test_a_cold_open_decodes_every_sample_once(voc_dataset: Dataset) -> None:
    assert voc_dataset.stats.decoded == len(SPECS)
    assert not voc_dataset.stats.reused
    assert voc_dataset.stats.nbytes > sum(s.height * s.width * 4 for s in VOC_SAMPLES)
    assert voc_dataset.excluded == []
    assert voc_dataset.name == "VOC2012"


def test_splits_hold_the_decoded_samples_in_file_order(voc_dataset: Dataset) -> None:
    assert sorted(voc_dataset.splits) == sorted(VOC_SPLITS)
    for name, names in VOC_SPLITS.items():
        split = voc_dataset.split(name)
        assert (split.name, split.ids, len(split)) == (name, names, len(names))
        for i, sample in enumerate(names):
            spec = SPECS[sample]
            assert (split.heights[i], split.widths[i]) == (spec.height, spec.width)
            np.testing.assert_array_equal(split.label(i), label_of(spec))
            image = split.image(i)
            assert image.shape == (spec.height, spec.width, 3)
            with Image.open(split.image_path(i)) as jpeg:
                np.testing.assert_array_equal(image, np.asarray(jpeg.convert("RGB")))
            inside = interior(label_of(spec))
            np.testing.assert_array_equal(classes_from_image(image)[inside], split.label(i)[inside])


def test_a_warm_open_decodes_nothing_and_serves_the_same_arrays(
    voc_root: Path, cache_dir: Path, voc_dataset: Dataset
) -> None:
    warm = open_dataset(voc_root, cache_dir)
    assert warm.stats.decoded == 0
    assert warm.stats.reused
    assert warm.fingerprint == voc_dataset.fingerprint
    assert warm.stats.nbytes == voc_dataset.stats.nbytes
    assert _content_digest(warm) == _content_digest(voc_dataset)
    assert _cache_entries(cache_dir) == [voc_dataset.fingerprint]


def test_a_changed_file_changes_the_fingerprint_and_rebuilds(
    voc_root: Path, cache_dir: Path, voc_dataset: Dataset
) -> None:
    write_voc(voc_root, [SampleSpec("2007_000039", 64, 48, classes=(4,))], {})
    bump_mtime(voc_root / "JPEGImages/2007_000039.jpg")
    rebuilt = open_dataset(voc_root, cache_dir)
    assert rebuilt.fingerprint != voc_dataset.fingerprint
    assert rebuilt.stats.decoded == len(SPECS)
    assert not rebuilt.stats.reused
    np.testing.assert_array_equal(
        rebuilt.split("train").label(1), label_of(SampleSpec("2007_000039", 64, 48, classes=(4,)))
    )


def test_views_are_read_only_and_not_copies(voc_dataset: Dataset) -> None:
    split = voc_dataset.split("train")
    image, label = split.image(0), split.label(0)
    for array in (image, label, split.heights, split.widths):
        assert not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        image[0, 0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        label[0, 0] = 1
    assert np.shares_memory(image, split.image(0))
    assert np.shares_memory(label, voc_dataset.split("val").label(2))  # the same sample


@pytest.mark.parametrize("index", [-1, 3, 10**9])
def test_an_index_out_of_range_is_not_found(voc_dataset: Dataset, index: int) -> None:
    split = voc_dataset.split("train")
    for read in (split.image, split.label, split.image_path):
        with pytest.raises(NotFoundError, match=r"index .* out of range .*'train'.*0\.\.2"):
            read(index)


def test_an_unknown_split_names_the_available_ones(voc_dataset: Dataset) -> None:
    with pytest.raises(NotFoundError, match=r"'test'.*available: train, val"):
        voc_dataset.split("test")


def test_rgb_labels_and_another_label_dir_give_the_same_dataset(
    tmp_path: Path, voc_dataset: Dataset
) -> None:
    root = write_voc(tmp_path / "rgb", VOC_SAMPLES, VOC_SPLITS, label_mode="RGB", label_dir="Aug")
    rgb = open_dataset(root, tmp_path / "cache-rgb", label_dir="Aug")
    assert _content_digest(rgb) == _content_digest(voc_dataset)


def _resave_label_smaller(root: Path, name: str) -> None:
    label = label_of(SampleSpec(name, 20, 30))
    label_picture(label, "P").save(root / "SegmentationClass" / f"{name}.png")


IMAGE_FILE, LABEL_FILE = f"JPEGImages/{SHARED}.jpg", f"SegmentationClass/{SHARED}.png"
# damage -> (what it does to a data root, the damaged file, a pattern of the reason)
DAMAGES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "corrupt image": (lambda p: corrupt_file(p / IMAGE_FILE), IMAGE_FILE, "not a readable"),
    "corrupt label": (lambda p: corrupt_file(p / LABEL_FILE), LABEL_FILE, "not a readable"),
    "truncated image": (lambda p: truncate_file(p / IMAGE_FILE), IMAGE_FILE, "truncated"),
    "truncated label": (lambda p: truncate_file(p / LABEL_FILE, 0.8), LABEL_FILE, "truncated"),
    "missing image": (lambda p: (p / IMAGE_FILE).unlink(), IMAGE_FILE, "missing"),
    "missing label": (lambda p: (p / LABEL_FILE).unlink(), LABEL_FILE, "missing"),
    "size mismatch": (lambda p: _resave_label_smaller(p, SHARED), LABEL_FILE, "30x20 .* differs"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_bad_sample_is_excluded_from_every_split_and_named(
    voc_root: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    apply, file, reason = DAMAGES[damage]
    apply(voc_root)
    with caplog.at_level(logging.WARNING, logger="service.cache"):
        dataset = open_dataset(voc_root, cache_dir)
    [excluded] = dataset.excluded
    assert excluded.name == SHARED
    assert file in excluded.reason
    assert re.search(reason, excluded.reason)
    [record] = caplog.records
    assert SHARED in record.getMessage()
    assert file in record.getMessage()
    for name, names in VOC_SPLITS.items():
        kept = [n for n in names if n != SHARED]
        split = dataset.split(name)
        assert split.ids == kept
        for i, sample in enumerate(kept):
            np.testing.assert_array_equal(split.label(i), label_of(SPECS[sample]))
    assert open_dataset(voc_root, cache_dir).excluded == dataset.excluded


def test_pillow_is_left_refusing_truncated_files() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_a_root_where_nothing_decodes_is_a_dataset_error(voc_root: Path, cache_dir: Path) -> None:
    for jpeg in (voc_root / "JPEGImages").iterdir():
        truncate_file(jpeg)
    with pytest.raises(DatasetError, match="none of 5 samples could be decoded"):
        open_dataset(voc_root, cache_dir)
    assert list(cache_dir.iterdir()) == []


def test_the_manifest_describes_samples_splits_and_exclusions(
    voc_root: Path, cache_dir: Path
) -> None:
    (voc_root / "ImageSets/Segmentation/val.txt").write_text("2007_000068\nghost\n")
    dataset = open_dataset(voc_root, cache_dir)
    manifest = json.loads((cache_dir / dataset.fingerprint / MANIFEST_FILE).read_text())
    first = manifest["samples"][0]
    assert set(first) == {"name", "height", "width", "image_offset", "label_offset"}
    assert manifest["splits"] == {"train": VOC_SPLITS["train"], "val": ["2007_000068"]}
    assert [e["name"] for e in manifest["excluded"]] == ["ghost"]
    assert manifest["stats"]["decoded"] == 4


def test_a_build_that_finds_the_cache_published_uses_it(voc_root: Path, cache_dir: Path) -> None:
    index = scan_voc(voc_root)
    first = build_cache(index, cache_dir)
    second = build_cache(index, cache_dir)
    assert (first.reused, second.reused) == (False, True)
    assert second.directory == first.directory
    assert second.manifest == first.manifest
    assert _cache_entries(cache_dir) == [index.fingerprint]


def test_an_unusable_cache_folder_is_rebuilt(voc_root: Path, cache_dir: Path) -> None:
    # Damaged by hand, with no dataset of this process mapping it (that would fault).
    fingerprint = scan_voc(voc_root).fingerprint
    expected = _content_digest(open_dataset(voc_root, cache_dir))
    truncate_file(cache_dir / fingerprint / IMAGES_FILE)
    rebuilt = open_dataset(voc_root, cache_dir)
    assert rebuilt.stats.decoded == len(SPECS)
    assert _content_digest(rebuilt) == expected
    (cache_dir / fingerprint / MANIFEST_FILE).unlink()
    assert open_dataset(voc_root, cache_dir).stats.decoded == len(SPECS)
    assert _cache_entries(cache_dir) == [fingerprint]


def test_worker_processes_build_the_same_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [
        SampleSpec(f"s{i:02d}", 20 + i % 7, 30 + i % 5, classes=(1 + i % 20,)) for i in range(40)
    ]
    root = write_voc(
        tmp_path / "voc",
        specs,
        {"train": [s.name for s in specs[:30]], "val": [s.name for s in specs[30:]]},
    )
    corrupt_file(root / "JPEGImages/s07.jpg")
    serial = open_dataset(root, tmp_path / "serial", workers=1)
    parallel = open_dataset(root, tmp_path / "parallel", workers=2, progress=True)
    assert "decoding" in capsys.readouterr().err
    assert parallel.stats.decoded == serial.stats.decoded == 39
    assert parallel.excluded == serial.excluded
    assert _content_digest(parallel) == _content_digest(serial)


def _open_after(barrier: Any, root: Path, cache_dir: Path, results: Any) -> None:
    barrier.wait(timeout=60)
    dataset = open_dataset(root, cache_dir)
    results.put((dataset.fingerprint, dataset.stats.decoded, _content_digest(dataset)))


def test_two_processes_building_at_once_both_succeed_and_agree(
    voc_root: Path, cache_dir: Path
) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [
        context.Process(target=_open_after, args=(barrier, voc_root, cache_dir, results))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert outcomes[0][0] == outcomes[1][0]
    assert outcomes[0][2] == outcomes[1][2]
    assert {decoded for _, decoded, _ in outcomes} <= {0, len(SPECS)}
    assert _cache_entries(cache_dir) == [outcomes[0][0]]
    assert _content_digest(open_dataset(voc_root, cache_dir)) == outcomes[0][2]

"""The synthetic demo data set: VOC layout, labels, sizes, alignment, determinism, caching."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from service import demo
from service.demo import CLASS_COLORS, ensure_demo, render_sample, write_demo
from service.source import U8Array
from service.voc import IGNORE_INDEX, NUM_CLASSES, voc_palette

TRAIN, VAL, SEED = 240, 60, 0
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few hundred samples, enough for the size statistics."""
    return write_demo(tmp_path_factory.mktemp("demo"), train=TRAIN, val=VAL, seed=SEED)


def split(root: Path, name: str) -> list[str]:
    return (root / "ImageSets" / "Segmentation" / f"{name}.txt").read_text().splitlines()


def load(root: Path, name: str) -> tuple[U8Array, U8Array]:
    with Image.open(root / "JPEGImages" / f"{name}.jpg") as image:
        rgb = np.asarray(image.convert("RGB"))
    with Image.open(root / "SegmentationClass" / f"{name}.png") as label:
        return rgb, np.asarray(label)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_layout_and_split_files(demo_root: Path) -> None:
    train, val = split(demo_root, "train"), split(demo_root, "val")
    assert (len(train), len(val)) == (TRAIN, VAL)
    assert split(demo_root, "trainval") == train + val
    assert not set(train) & set(val)
    assert all(re.fullmatch(r"20(0[7-9]|1[01])_\d{6}", name) for name in train + val)
    assert train == sorted(train)
    assert val == sorted(val)
    for name in ("train", "val", "trainval"):
        text = (demo_root / "ImageSets" / "Segmentation" / f"{name}.txt").read_text()
        assert text.endswith("\n")
        assert "\n\n" not in text
    assert {p.stem for p in (demo_root / "JPEGImages").iterdir()} == set(train + val)
    assert {p.stem for p in (demo_root / "SegmentationClass").iterdir()} == set(train + val)


def test_files_are_rgb_jpegs_and_palette_pngs(demo_root: Path) -> None:
    for name in split(demo_root, "trainval")[::30]:
        with (
            Image.open(demo_root / "JPEGImages" / f"{name}.jpg") as image,
            Image.open(demo_root / "SegmentationClass" / f"{name}.png") as label,
        ):
            assert (image.format, image.mode) == ("JPEG", "RGB")
            assert (label.format, label.mode) == ("PNG", "P")
            assert label.getpalette() == voc_palette()
            assert image.size == label.size


def test_label_values_are_classes_or_ignore(demo_root: Path) -> None:
    seen: set[int] = set()
    for name in split(demo_root, "trainval")[:60]:
        values = set(np.unique(load(demo_root, name)[1]).tolist())
        assert values <= set(range(NUM_CLASSES)) | {IGNORE_INDEX}
        assert IGNORE_INDEX in values
        assert values - {0, IGNORE_INDEX}, f"{name} has no object"
        seen |= values
    assert len(seen) >= 12, "a few dozen pictures show many classes"


@pytest.mark.parametrize("axis", [0, 1])
def test_objects_are_outlined_by_bands_of_255(demo_root: Path, axis: int) -> None:
    for name in split(demo_root, "trainval")[:40]:
        label = load(demo_root, name)[1]
        lines = label if axis == 1 else label.T
        left, right = lines[:, :-1], lines[:, 1:]
        touching = (left != right) & (left != IGNORE_INDEX) & (right != IGNORE_INDEX)
        assert not touching.any(), f"{name}: two regions meet without a border"
        for line in lines:
            assert min(_separating_runs(line), default=5) >= 5, name
        assert _near(label != IGNORE_INDEX, 5)[label == IGNORE_INDEX].mean() > 0.99, name


def _separating_runs(line: U8Array) -> list[int]:
    """Lengths of the runs of 255 whose two neighbours are different classes."""
    ignore = np.flatnonzero(line == IGNORE_INDEX)
    if ignore.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(ignore) > 1)
    starts, stops = ignore[np.r_[0, breaks + 1]], ignore[np.r_[breaks, ignore.size - 1]]
    inside = (starts > 0) & (stops < line.size - 1)
    starts, stops = starts[inside], stops[inside]
    differ = line[starts - 1] != line[stops + 1]
    runs: list[int] = (stops - starts + 1)[differ].tolist()
    return runs


def _near(mask: npt.NDArray[np.bool_], radius: int) -> npt.NDArray[np.bool_]:
    """Pixels within ``radius`` (Chebyshev) of a pixel of ``mask``."""
    out = mask.copy()
    for shift in range(1, radius + 1):
        out[shift:] |= mask[:-shift]
        out[:-shift] |= mask[shift:]
    grown = out.copy()
    for shift in range(1, radius + 1):
        grown[:, shift:] |= out[:, :-shift]
        grown[:, :-shift] |= out[:, shift:]
    return grown


def test_sizes_are_like_voc(demo_root: Path) -> None:
    sizes = []
    for name in split(demo_root, "trainval"):
        with Image.open(demo_root / "JPEGImages" / f"{name}.jpg") as image:
            sizes.append(image.size)
    widths, heights = np.array(sizes).T
    usable = (heights >= 320) & (widths >= 480)
    assert 0.65 <= usable.mean() <= 0.85
    assert max(widths.max(), heights.max()) == 500
    assert (heights > widths).mean() > 0.1, "some portrait pictures"
    assert (widths == 500).mean() > 0.6, "mostly 500 wide"


def test_image_shows_each_object_in_its_class_colour(demo_root: Path) -> None:
    colors = np.array([CLASS_COLORS[c] for c in range(1, NUM_CLASSES)], dtype=float)
    checked = 0
    for name in split(demo_root, "trainval")[:80]:
        image, label = load(demo_root, name)
        for cls in set(np.unique(label).tolist()) - {0, IGNORE_INDEX}:
            region = label == cls
            if region.sum() < 300:
                continue
            median = np.median(image[region].astype(float), axis=0)
            distances = np.linalg.norm(colors - median, axis=1)
            assert distances.argmin() + 1 == cls, f"{name}: class {cls} painted {median}"
            assert distances.min() < 30
            checked += 1
    assert checked >= 60


def test_files_hold_the_rendered_samples(demo_root: Path) -> None:
    for index in (0, TRAIN + 1):
        name = split(demo_root, "trainval")[index]
        image, label = render_sample(SEED, index)
        stored_image, stored_label = load(demo_root, name)
        np.testing.assert_array_equal(stored_label, label)
        # JPEG drops the pixel noise; 8 x 8 block means survive it.
        error = stored_image.astype(float) - image
        height, width = (image.shape[0] // 8) * 8, (image.shape[1] // 8) * 8
        blocks = error[:height, :width].reshape(height // 8, 8, width // 8, 8, 3)
        assert np.abs(blocks.mean(axis=(1, 3))).mean() < 1


def test_same_seed_same_bytes_however_many_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "_worker_count", lambda samples: 1)
    serial = tree(write_demo(tmp_path / "a", train=18, val=12, seed=7))
    again = tree(write_demo(tmp_path / "b", train=18, val=12, seed=7))
    monkeypatch.setattr(demo, "_worker_count", lambda samples: 2)
    parallel = tree(write_demo(tmp_path / "c", train=18, val=12, seed=7))
    assert len(serial) == 2 * 30 + 3
    assert again == serial
    assert parallel == serial


def test_another_seed_gives_other_pictures(tmp_path: Path) -> None:
    one = tree(write_demo(tmp_path / "a", train=3, val=2, seed=1))
    two = tree(write_demo(tmp_path / "b", train=3, val=2, seed=2))
    assert set(one.values()).isdisjoint(two.values())


def test_progress_bar_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_demo(tmp_path / "quiet", train=2, val=1)
    assert capsys.readouterr().err == ""
    write_demo(tmp_path / "loud", train=2, val=1, progress=True)
    assert "3/3" in capsys.readouterr().err


@pytest.mark.parametrize(("train", "val", "seed"), [(-1, 1, 0), (1, -1, 0), (1, 1, -1)])
def test_negative_arguments_are_refused(tmp_path: Path, train: int, val: int, seed: int) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        write_demo(tmp_path, train=train, val=val, seed=seed)


def test_ensure_demo_writes_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = ensure_demo(tmp_path / "cache", train=3, val=2, seed=5)
    assert root == tmp_path / "cache" / "demo-3-2-5"
    assert len(split(root, "trainval")) == 5
    before = tree(root)

    def fail(*args: object, **kwargs: object) -> Path:
        raise AssertionError("written twice")

    monkeypatch.setattr(demo, "write_demo", fail)
    assert ensure_demo(tmp_path / "cache", train=3, val=2, seed=5) == root
    assert tree(root) == before
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [root.name]


def test_ensure_demo_keeps_the_winners_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "demo-3-2-0"
    real_write = demo.write_demo

    def write_while_another_process_finishes(root: Path, **kwargs: Any) -> Path:
        real_write(target, **kwargs)
        (target / "winner").touch()
        return real_write(root, **kwargs)

    monkeypatch.setattr(demo, "write_demo", write_while_another_process_finishes)
    assert ensure_demo(tmp_path, train=3, val=2, seed=0) == target
    assert (target / "winner").exists()
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_ensure_demo_cleans_up_after_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(root: Path, **kwargs: int) -> Path:
        (root / "partial").touch()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(demo, "write_demo", disk_full)
    with pytest.raises(OSError, match="No space"):
        ensure_demo(tmp_path, train=3, val=2, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_two_processes_ensuring_the_same_demo_both_succeed(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from service.demo import ensure_demo; "
        "print(ensure_demo(Path(sys.argv[1]), train=8, val=4, seed=3))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, env=env
        )
        for _ in range(2)
    ]
    outputs = [racer.communicate()[0].decode().strip() for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0]
    target = tmp_path / "demo-8-4-3"
    assert outputs == [str(target)] * 2
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    assert tree(target) == tree(write_demo(tmp_path / "fresh", train=8, val=4, seed=3))

"""Class statistics: exact counts, median-frequency weights, per-image presence, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.dataset import open_dataset
from service.errors import InvalidParameterError
from service.source import U8Array
from service.stats import (
    CLASS_PIXELS_FILE,
    COLUMNS,
    I64Array,
    count_labels,
    load_or_count,
    parse_classes,
    samples_with,
    source_class_pixels,
    split_stats,
)
from service.voc import IGNORE_INDEX, NUM_CLASSES, VOC_CLASSES
from tests.factories import VOC_SAMPLES, VOC_SPLITS, label_of
from tests.service.memsource import MemorySource, random_source

# Three labels whose statistics are worked out by hand below.
HAND = [
    np.array([[0, 0], [1, 255]], np.uint8),
    np.array([[0, 2], [2, 2]], np.uint8),
    np.array([[1, 1, 255, 255]], np.uint8),
]


def _plain_counts(labels: list[U8Array]) -> tuple[I64Array, I64Array, int]:
    """Per class: pixels and images, and the ignore pixels, by the most direct numpy."""
    pixels = np.zeros(NUM_CLASSES, np.int64)
    images = np.zeros(NUM_CLASSES, np.int64)
    for label in labels:
        values, counts = np.unique(label, return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            if value < NUM_CLASSES:
                pixels[value] += count
                images[value] += 1
    ignore = sum(int((label == IGNORE_INDEX).sum()) for label in labels)
    return pixels, images, ignore


def _plain_weights(labels: list[U8Array]) -> list[float | None]:
    """Median frequency balancing written out class by class, image by image."""
    frequencies: dict[int, float] = {}
    for c in range(NUM_CLASSES):
        with_c = [label for label in labels if (label == c).any()]
        if with_c:
            own = sum(int((label == c).sum()) for label in with_c)
            labelled = sum(int((label != IGNORE_INDEX).sum()) for label in with_c)
            frequencies[c] = own / labelled
    median = float(np.median(list(frequencies.values())))
    return [median / frequencies[c] if c in frequencies else None for c in range(NUM_CLASSES)]


def test_hand_worked_statistics() -> None:
    stats = split_stats("train", count_labels(HAND, len(HAND)))
    assert (stats.images, stats.pixels, stats.ignore_pixels) == (3, 12, 3)
    assert [(c.pixels, c.images) for c in stats.classes[:3]] == [(3, 2), (3, 2), (3, 1)]
    # frequencies: class 0 3/7, class 1 3/5, class 2 3/4; their median is 3/5.
    weights = [c.weight for c in stats.classes]
    assert weights[:3] == pytest.approx([7 / 5, 1.0, 4 / 5])
    assert weights[3:] == [None] * (NUM_CLASSES - 3)
    assert [c.name for c in stats.classes] == list(VOC_CLASSES)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_stats_equal_a_plain_count(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = [(int(rng.integers(1, 9)), int(rng.integers(1, 9))) for _ in range(n)]
    source = random_source(sizes, seed=seed)
    labels = [source.label(i) for i in range(n)]
    stats = split_stats(source.name, source_class_pixels(source))
    pixels, images, ignore = _plain_counts(labels)
    assert [c.pixels for c in stats.classes] == pixels.tolist()
    assert [c.images for c in stats.classes] == images.tolist()
    assert stats.ignore_pixels == ignore
    assert stats.pixels == sum(label.size for label in labels)
    assert stats.images == n
    expected = _plain_weights(labels) if pixels.any() else [None] * NUM_CLASSES
    for got, want in zip([c.weight for c in stats.classes], expected, strict=True):
        assert (got is None) == (want is None)
        if want is not None:
            assert got == pytest.approx(want)


def test_an_all_ignore_split_has_no_weights() -> None:
    labels = [np.full((3, 3), IGNORE_INDEX, np.uint8)]
    stats = split_stats("val", count_labels(labels, 1))
    assert stats.ignore_pixels == stats.pixels == 9
    assert all(c.weight is None for c in stats.classes)
    assert stats.shares() == [0.0] * NUM_CLASSES


def test_samples_with_selects_by_presence() -> None:
    table = count_labels(HAND, len(HAND))
    assert samples_with(table, [1]).tolist() == [0, 2]
    assert samples_with(table, [0, 2]).tolist() == [1]
    assert samples_with(table, [IGNORE_INDEX]).tolist() == [0, 2]
    assert samples_with(table, []).tolist() == [0, 1, 2]
    assert samples_with(table, [7]).tolist() == []


@pytest.mark.parametrize("text", ["21", "-1", "person", "1,,2", "254", "1.5"])
def test_parse_classes_names_the_parameter(text: str) -> None:
    with pytest.raises(InvalidParameterError, match="classes: must be"):
        parse_classes(text)


def test_parse_classes() -> None:
    assert parse_classes("15, 12,255") == (15, 12, 255)
    assert parse_classes("") == parse_classes(None) == ()


def test_the_table_is_counted_once_and_kept(tmp_path: Path) -> None:
    calls: list[int] = []

    def count() -> I64Array:
        calls.append(1)
        return count_labels(HAND, len(HAND))

    first = load_or_count(tmp_path, count, len(HAND))
    again = load_or_count(tmp_path, count, len(HAND))
    assert calls == [1]
    assert np.array_equal(first, again)
    assert not again.flags.writeable


def test_a_table_of_another_shape_is_recounted(tmp_path: Path) -> None:
    np.save(tmp_path / CLASS_PIXELS_FILE, np.zeros((5, COLUMNS), np.int64))
    table = load_or_count(tmp_path, lambda: count_labels(HAND, len(HAND)), len(HAND))
    assert table.shape == (len(HAND), COLUMNS)
    assert np.load(tmp_path / CLASS_PIXELS_FILE).shape == (len(HAND), COLUMNS)


def test_the_dataset_keeps_class_presence_with_its_cache(voc_root: Path, cache_dir: Path) -> None:
    dataset = open_dataset(voc_root, cache_dir)
    assert (cache_dir / dataset.fingerprint / CLASS_PIXELS_FILE).is_file()
    specs = {spec.name: spec for spec in VOC_SAMPLES}
    for name, split in dataset.splits.items():
        expected = count_labels([label_of(specs[i]) for i in split.ids], len(split))
        assert np.array_equal(split.class_pixels, expected), name
        assert split.stats() is split.stats()  # derived once
    warm = open_dataset(voc_root, cache_dir)
    train = warm.split("train")
    assert np.array_equal(train.class_pixels, dataset.split("train").class_pixels)
    assert set(VOC_SPLITS) <= set(warm.splits)


def test_a_memory_source_counts_like_the_cache() -> None:
    source = MemorySource("x", [np.zeros((*HAND[0].shape, 3), np.uint8)], [HAND[0]])
    assert source_class_pixels(source).tolist() == [[2, 1] + [0] * 19 + [1]]

"""Class statistics: per-image class presence, split totals, median-frequency weights.

The unit is one table per data set, ``class_pixels`` of shape (samples,
:data:`COLUMNS`) int64: row ``i`` counts the pixels of each class 0..20 in
sample ``i``'s whole label, and its last column the ignore (255) pixels. It is
counted once per dataset content, next to the decoded cache
(:func:`load_or_count`), so a request only sums a few rows.

Median-frequency balancing (Eigen and Fergus, as in SegNet): the frequency of
class ``c`` is its pixels over the non-ignore pixels of the images in which
``c`` occurs; its weight is the median of the frequencies of the classes that
occur, divided by its own (``None`` for a class that never occurs).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from service.errors import InvalidParameterError
from service.source import SplitSource, U8Array
from service.voc import IGNORE_INDEX, NUM_CLASSES, VOC_CLASSES

logger = logging.getLogger(__name__)

I64Array = npt.NDArray[np.int64]

COLUMNS: Final = NUM_CLASSES + 1
"""Columns of a class-pixel table: classes 0..20, then the ignore pixels."""
IGNORE_COLUMN: Final = NUM_CLASSES
CLASS_PIXELS_FILE: Final = "class_pixels.npy"


def label_counts(label: U8Array) -> I64Array:
    """Pixels of each class 0..20 in ``label``, then its ignore pixels: (:data:`COLUMNS`,)."""
    counts = np.bincount(np.asarray(label).reshape(-1), minlength=256)
    row = np.empty(COLUMNS, dtype=np.int64)
    row[:NUM_CLASSES] = counts[:NUM_CLASSES]
    # Decoding maps every value outside 0..20 to 255; count any stray value as ignore too.
    row[IGNORE_COLUMN] = counts.sum() - row[:NUM_CLASSES].sum()
    return row


def count_labels(labels: Sequence[U8Array] | Callable[[int], U8Array], n: int) -> I64Array:
    """The class-pixel table of ``n`` labels (a sequence, or a function of the index)."""
    get = labels if callable(labels) else labels.__getitem__
    table = np.zeros((n, COLUMNS), dtype=np.int64)
    for i in range(n):
        table[i] = label_counts(get(i))
    return table


def source_class_pixels(source: SplitSource) -> I64Array:
    """The class-pixel table of every sample of ``source``, counted from its labels."""
    return count_labels(source.label, len(source.heights))


def load_or_count(directory: Path, count: Callable[[], I64Array], rows: int) -> I64Array:
    """The table stored in ``directory``, or ``count()`` stored there for next time (read-only).

    The file is written beside the cache's data files through a temporary name
    and a rename, so concurrent openers never read half a table. A cache folder
    that cannot be written to (another user's) still serves: the table then
    lives in memory only, and the failure is logged.
    """
    path = directory / CLASS_PIXELS_FILE
    try:
        stored = np.load(path, allow_pickle=False)
        if stored.shape == (rows, COLUMNS) and stored.dtype == np.int64:
            return _read_only(stored)
        logger.warning("ignoring %s: shape %s, expected %s", path, stored.shape, (rows, COLUMNS))
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as error:
        logger.warning("ignoring unreadable %s: %s", path, error)
    table = count()
    _store(path, table)
    return _read_only(table)


def _store(path: Path, table: I64Array) -> None:
    try:
        fd, temporary = tempfile.mkstemp(prefix=".class-pixels-", suffix=".npy", dir=path.parent)
        with os.fdopen(fd, "wb") as file:
            np.save(file, table, allow_pickle=False)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as error:
        logger.warning("cannot store %s (kept in memory): %s", path, error)


def _read_only(table: I64Array) -> I64Array:
    table.setflags(write=False)
    return table


@dataclass(frozen=True)
class ClassStats:
    """One class over a split: its pixels, the images it occurs in, its balancing weight."""

    index: int
    name: str
    pixels: int
    images: int
    weight: float | None


@dataclass(frozen=True)
class SplitStats:
    """The exact counts of a split's whole labels (no crop) and each class's weight."""

    split: str
    images: int
    pixels: int
    ignore_pixels: int
    classes: tuple[ClassStats, ...]

    def shares(self) -> list[float]:
        """Each class's share of the split's non-ignore pixels (zeros for an all-ignore split)."""
        labelled = self.pixels - self.ignore_pixels
        return [c.pixels / labelled if labelled else 0.0 for c in self.classes]


def median_frequency_weights(class_pixels: I64Array) -> list[float | None]:
    """Median-frequency-balancing weight of each class 0..20 (``None`` where it never occurs)."""
    table = np.asarray(class_pixels, dtype=np.int64)
    pixels = table[:, :NUM_CLASSES]
    labelled = pixels.sum(axis=1)  # non-ignore pixels of each image
    present = pixels > 0
    # Pixels of the images in which each class occurs, class by class.
    occurring_pixels = (present * labelled[:, np.newaxis]).sum(axis=0)
    occurs = present.any(axis=0)
    frequency = np.zeros(NUM_CLASSES, dtype=np.float64)
    frequency[occurs] = pixels.sum(axis=0)[occurs] / occurring_pixels[occurs]
    if not occurs.any():
        return [None] * NUM_CLASSES
    median = float(np.median(frequency[occurs]))
    return [median / float(f) if ok else None for f, ok in zip(frequency, occurs, strict=True)]


def split_stats(split: str, class_pixels: I64Array) -> SplitStats:
    """The statistics of a split from its class-pixel table."""
    table = np.asarray(class_pixels, dtype=np.int64).reshape(-1, COLUMNS)
    totals = table.sum(axis=0)
    images = (table[:, :NUM_CLASSES] > 0).sum(axis=0)
    weights = median_frequency_weights(table)
    classes = tuple(
        ClassStats(i, VOC_CLASSES[i], int(totals[i]), int(images[i]), weights[i])
        for i in range(NUM_CLASSES)
    )
    return SplitStats(split, len(table), int(totals.sum()), int(totals[IGNORE_COLUMN]), classes)


def samples_with(class_pixels: I64Array, classes: Sequence[int]) -> I64Array:
    """Indices (ascending) of the samples whose label contains every class of ``classes``.

    ``classes`` may name 255 (the ignore value) too; an empty sequence selects every sample.
    """
    table = np.asarray(class_pixels)
    keep = np.ones(len(table), dtype=bool)
    for value in classes:
        keep &= table[:, class_column(value)] > 0
    return np.flatnonzero(keep).astype(np.int64)


def class_column(value: int) -> int:
    """The table column of a class index 0..20, or of 255; 422 naming ``classes`` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < NUM_CLASSES:
            return value
        if value == IGNORE_INDEX:
            return IGNORE_COLUMN
    raise InvalidParameterError(
        "classes", f"must be class indices 0..{NUM_CLASSES - 1} (or {IGNORE_INDEX}), got {value!r}"
    )


def parse_classes(text: str | None) -> tuple[int, ...]:
    """``"15,12"`` -> ``(15, 12)``: class indices (or 255), comma-separated; empty -> ``()``."""
    if text is None or not text.strip():
        return ()
    values: list[int] = []
    for part in text.split(","):
        try:
            value = int(part.strip())
        except ValueError:
            raise InvalidParameterError(
                "classes",
                f"must be comma-separated class indices 0..{NUM_CLASSES - 1} "
                f"(or {IGNORE_INDEX}), got {text!r}",
            ) from None
        class_column(value)
        values.append(value)
    return tuple(values)

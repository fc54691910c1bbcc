"""The served dataset: splits over the memory-mapped decoded cache.

`open_dataset` indexes a data root, opens the decoded cache of its current
content (building it first when there is none) and returns a `Dataset`. The
cache files are mapped read-only, so every worker process serving the same
root shares one copy in the page cache, and `Split.image` / `Split.label` hand
out read-only views without copying.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.cache import (
    IMAGES_FILE,
    LABELS_FILE,
    BuildResult,
    Excluded,
    Manifest,
    SampleEntry,
    build_cache,
    load_manifest,
)
from service.errors import NotFoundError
from service.index import scan_voc
from service.progress import Progress
from service.source import U8Array
from service.stats import I64Array, SplitStats, count_labels, load_or_count, split_stats
from service.voc import IMAGE_DIR, IMAGE_SUFFIX, LABEL_DIR, SPLIT_DIR

__all__ = ["BuildStats", "Dataset", "Excluded", "Split", "open_dataset"]


def _read_only_int32(values: Sequence[int]) -> npt.NDArray[np.int32]:
    array = np.array(values, dtype=np.int32)
    array.flags.writeable = False
    return array


class Split:
    """One split: the samples of ``ImageSets/Segmentation/<name>.txt`` that decoded, in order.

    Implements `service.source.SplitSource`; sample ``i`` is the i-th listed name
    that was not excluded.
    """

    def __init__(
        self,
        name: str,
        entries: Sequence[SampleEntry],
        images: U8Array,
        labels: U8Array,
        root: Path,
        class_pixels: I64Array,
    ) -> None:
        self._name = name
        self._root = root
        self._ids = [entry.name for entry in entries]
        self._heights = _read_only_int32([entry.height for entry in entries])
        self._widths = _read_only_int32([entry.width for entry in entries])
        self._image_offsets = [entry.image_offset for entry in entries]
        self._label_offsets = [entry.label_offset for entry in entries]
        self._images = images
        self._labels = labels
        self._class_pixels = class_pixels
        self._stats: SplitStats | None = None

    @property
    def name(self) -> str:
        """The split's name (the split file's stem)."""
        return self._name

    @property
    def ids(self) -> list[str]:
        """Sample names, in split order."""
        return self._ids

    @property
    def heights(self) -> npt.NDArray[np.int32]:
        """Image height of each sample (read-only)."""
        return self._heights

    @property
    def widths(self) -> npt.NDArray[np.int32]:
        """Image width of each sample (read-only)."""
        return self._widths

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"Split(name={self._name!r}, size={len(self)})"

    def _position(self, index: int) -> int:
        position = operator.index(index)
        if not 0 <= position < len(self._ids):
            raise NotFoundError(
                f"sample index {position} is out of range for split {self._name!r} "
                f"({len(self._ids)} samples, indices 0..{len(self._ids) - 1})"
            )
        return position

    def image(self, index: int) -> U8Array:
        """Decoded RGB image (H, W, 3) uint8: a read-only view into the cache."""
        i = self._position(index)
        height, width = int(self._heights[i]), int(self._widths[i])
        start = self._image_offsets[i]
        return self._images[start : start + height * width * 3].reshape(height, width, 3)

    def label(self, index: int) -> U8Array:
        """Class indices (H, W) uint8, 255 = border/ignore: a read-only view into the cache."""
        i = self._position(index)
        height, width = int(self._heights[i]), int(self._widths[i])
        start = self._label_offsets[i]
        return self._labels[start : start + height * width].reshape(height, width)

    @property
    def class_pixels(self) -> I64Array:
        """Per sample, the pixels of each class 0..20 and of 255 in its whole label.

        (len, 22) int64, read-only: counted once per dataset content with the
        decoded cache (see `service.stats`); ``class_pixels[i] > 0`` are the
        classes sample ``i`` contains.
        """
        return self._class_pixels

    def stats(self) -> SplitStats:
        """The split's class statistics (derived from `class_pixels` once, then kept)."""
        if self._stats is None:
            self._stats = split_stats(self._name, self._class_pixels)
        return self._stats

    def image_path(self, index: int) -> Path:
        """The stored JPEG of sample ``index``."""
        return self._root / IMAGE_DIR / f"{self._ids[self._position(index)]}{IMAGE_SUFFIX}"


@dataclass(frozen=True)
class BuildStats:
    """How a dataset was opened.

    ``decoded``: samples decoded by this open (0 on a warm start); ``seconds``:
    time this open took; ``nbytes``: size of the cache folder on disk;
    ``reused``: whether an existing cache was used (found, or published
    meanwhile by another process).
    """

    decoded: int
    seconds: float
    nbytes: int
    reused: bool


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data root's splits over its decoded cache."""

    root: Path
    name: str
    fingerprint: str
    splits: dict[str, Split]
    excluded: list[Excluded]
    stats: BuildStats

    def split(self, name: str) -> Split:
        """The split called ``name``; `NotFoundError` naming the available ones otherwise."""
        try:
            return self.splits[name]
        except KeyError:
            available = ", ".join(sorted(self.splits)) or "none"
            raise NotFoundError(f"unknown split {name!r}; available: {available}") from None


def _map_read_only(path: Path) -> U8Array:
    """The whole file as a read-only uint8 array backed by the page cache."""
    mapped: U8Array = np.memmap(path, dtype=np.uint8, mode="r").view(np.ndarray)
    return mapped


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())


def open_dataset(
    root: Path,
    cache_dir: Path,
    label_dir: str = LABEL_DIR,
    *,
    split_dir: str = SPLIT_DIR,
    progress: Progress | bool = False,
    workers: int | None = None,
) -> Dataset:
    """Open the data root ``root`` over its decoded cache in ``cache_dir``, building it if needed.

    Labels are ``<label_dir>/NAME.png``, the splits the ``<split_dir>/*.txt``
    files (``SegmentationClassAug`` and ``ImageSets/SegmentationAug`` for SBD's
    trainaug). A warm start (the cache of the current content exists) decodes
    nothing. `service.errors.DatasetError` when ``root`` is not a VOC layout or
    nothing in it decodes; bad samples are excluded and logged instead.
    ``progress`` shows a tqdm bar while decoding; ``workers`` decoding processes
    (default: one per CPU; small datasets decode in this process). Worker
    processes are started like ``multiprocessing``'s spawn, so a script calling
    this needs the ``if __name__ == "__main__":`` guard.
    """
    started = time.perf_counter()
    index = scan_voc(root, label_dir, split_dir)
    directory = cache_dir / index.fingerprint
    manifest = load_manifest(directory, index.fingerprint)
    if manifest is None:
        opened = build_cache(index, cache_dir, progress=progress, workers=workers)
    else:
        opened = BuildResult(directory, manifest, decoded=0, reused=True)
    splits = _open_splits(opened.directory, opened.manifest, root)
    seconds = time.perf_counter() - started
    stats = BuildStats(opened.decoded, seconds, _folder_size(opened.directory), opened.reused)
    name = root.resolve().name or str(root)
    return Dataset(root, name, index.fingerprint, splits, opened.manifest.excluded, stats)


def _open_splits(directory: Path, manifest: Manifest, root: Path) -> dict[str, Split]:
    """Every split of ``manifest`` over the memory-mapped data files of ``directory``."""
    images = _map_read_only(directory / IMAGES_FILE)
    labels = _map_read_only(directory / LABELS_FILE)
    samples = manifest.samples
    position = {entry.name: i for i, entry in enumerate(samples)}

    def label(i: int) -> U8Array:
        entry = samples[i]
        size = entry.height * entry.width
        return labels[entry.label_offset : entry.label_offset + size]

    table = load_or_count(directory, lambda: count_labels(label, len(samples)), len(samples))
    splits = {}
    for name, names in manifest.splits.items():
        rows = np.array([position[sample] for sample in names], dtype=np.int64)
        entries = [samples[i] for i in rows.tolist()]
        class_pixels = table[rows]
        class_pixels.setflags(write=False)
        splits[name] = Split(name, entries, images, labels, root, class_pixels)
    return splits

"""The index of a VOC-layout data root: its splits, its sample files, its fingerprint.

A split is any ``<split_dir>/*.txt`` (``ImageSets/Segmentation`` by default,
``ImageSets/SegmentationAug`` for SBD's trainaug); its samples are the file's
non-blank lines, in order. Sample ``NAME`` is ``JPEGImages/NAME.jpg`` with the
label ``<label_dir>/NAME.png``. The fingerprint names the content the decoded
cache was built from; it only needs ``os.stat``, so checking it is cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from service.errors import DatasetError
from service.voc import IMAGE_DIR, IMAGE_SUFFIX, LABEL_DIR, LABEL_SUFFIX, SPLIT_DIR, VOC_SUBDIR

# Bump when the decoded cache's layout or the decoding rules change: old caches
# then stop matching and are rebuilt.
CACHE_FORMAT: Final = 1


def sample_paths(root: Path, label_dir: str, name: str) -> tuple[Path, Path]:
    """``(<root>/JPEGImages/<name>.jpg, <root>/<label_dir>/<name>.png)``."""
    return root / IMAGE_DIR / f"{name}{IMAGE_SUFFIX}", root / label_dir / f"{name}{LABEL_SUFFIX}"


@dataclass(frozen=True)
class VocIndex:
    """What a data root holds: split name -> sample names in file order, and a fingerprint."""

    root: Path
    label_dir: str
    splits: Mapping[str, list[str]]
    fingerprint: str

    def image_path(self, name: str) -> Path:
        """``<root>/JPEGImages/<name>.jpg``."""
        return sample_paths(self.root, self.label_dir, name)[0]

    def label_path(self, name: str) -> Path:
        """``<root>/<label_dir>/<name>.png``."""
        return sample_paths(self.root, self.label_dir, name)[1]

    @property
    def sample_names(self) -> list[str]:
        """Every name any split lists, once each, sorted."""
        return unique_names(self.splits)


def unique_names(splits: Mapping[str, Iterable[str]]) -> list[str]:
    """Every name any split lists, once each, sorted."""
    return sorted({name for names in splits.values() for name in names})


def parse_split(content: bytes, source: Path) -> list[str]:
    """Sample names of one split file: each line stripped, blank lines skipped, in file order."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetError(f"split file {source} is not UTF-8 text: {error}") from error
    names = [line.strip() for line in text.splitlines() if line.strip()]
    for name in names:
        if not _is_inside_root(name):
            raise DatasetError(f"split file {source} names {name!r}, a path outside the data root")
    return names


def _is_inside_root(name: str) -> bool:
    """Whether ``JPEGImages/<name>.jpg`` stays below the data root (no absolute path, no ``..``)."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return bool(parts) and parts[0] != "/" and ".." not in parts


def split_files(root: Path, split_dir: str = SPLIT_DIR) -> list[Path]:
    """The split files ``<root>/<split_dir>/*.txt``, sorted by name; `DatasetError` if none."""
    if not root.is_dir():
        raise DatasetError(f"data root {root} does not exist or is not a folder")
    found = sorted(
        path
        for path in (root / split_dir).glob("*.txt")
        if path.is_file() and not path.name.startswith(".")
    )
    if found:
        return found
    hint = ""
    if (root / VOC_SUBDIR / split_dir).is_dir():
        hint = f"; did you mean {root / VOC_SUBDIR}?"
    raise DatasetError(
        f"{root} is not a VOC layout: no split file {split_dir}/*.txt "
        f"(e.g. train.txt, val.txt){hint}"
    )


def scan_voc(root: Path, label_dir: str = LABEL_DIR, split_dir: str = SPLIT_DIR) -> VocIndex:
    """Index a VOC-layout ``root``; `DatasetError` when it has no split file."""
    files = split_files(root, split_dir)
    contents = {path.stem: _read_split_bytes(path) for path in files}
    splits = {path.stem: parse_split(contents[path.stem], path) for path in files}
    samples = [
        path for name in unique_names(splits) for path in sample_paths(root, label_dir, name)
    ]
    fingerprint = content_fingerprint(label_dir, contents, samples, root, split_dir)
    return VocIndex(root=root, label_dir=label_dir, splits=splits, fingerprint=fingerprint)


def _read_split_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DatasetError(f"cannot read split file {path}: {error}") from error


def content_fingerprint(
    label_dir: str,
    split_contents: Mapping[str, bytes],
    files: Iterable[Path],
    root: Path,
    split_dir: str = SPLIT_DIR,
) -> str:
    """Hex digest of cache format, the folders, split files, each file's size and mtime.

    A missing file counts as missing, so it appearing later changes the digest.
    Paths enter relative to ``root``: the same content elsewhere keeps its digest.
    """
    digest = hashlib.sha256()
    header = {
        "format": CACHE_FORMAT,
        "label_dir": label_dir,
        "splits": {
            name: hashlib.sha256(content).hexdigest()
            for name, content in sorted(split_contents.items())
        },
    }
    if split_dir != SPLIT_DIR:
        # Only when set: the default layout keeps the fingerprints (and caches) it had.
        header["split_dir"] = split_dir
    digest.update(json.dumps(header, sort_keys=True).encode())
    for path in files:
        digest.update(f"\n{path.relative_to(root).as_posix()}\t{_stat_signature(path)}".encode())
    return digest.hexdigest()[:32]


def _stat_signature(path: Path) -> str:
    """``size:mtime_ns`` of a regular file, ``missing`` otherwise."""
    try:
        stat = os.stat(path)
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"

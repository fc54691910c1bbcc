"""The decoded cache: every sample decoded once, stored raw, published atomically.

One folder per content fingerprint, ``<cache_dir>/<fingerprint>/``:

``images.u8``
    the RGB images (H, W, 3) uint8, concatenated;
``labels.u8``
    the class indices (H, W) uint8, concatenated;
``manifest.json``
    per sample its name, size and byte offsets; per split its sample names in
    order; the excluded samples with their reasons; build statistics.

A build writes into a private temporary folder inside ``cache_dir`` and renames
it into place (``os.rename`` is atomic), so readers never see a half-written
cache and two processes building at once both succeed: the second rename fails,
and its builder discards its own copy and uses the first. Folders of other
fingerprints are left alone: the same ``cache_dir`` may serve several data roots.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from service.decode import DecodeJob, SampleRejectedError, probe_sample
from service.errors import DatasetError
from service.index import CACHE_FORMAT, VocIndex
from service.pool import decode_all
from service.progress import Progress

logger = logging.getLogger(__name__)

MANIFEST_FILE: Final = "manifest.json"
IMAGES_FILE: Final = "images.u8"
LABELS_FILE: Final = "labels.u8"


@dataclass(frozen=True)
class Excluded:
    """A sample left out of every split, and why (naming the file)."""

    name: str
    reason: str


@dataclass(frozen=True)
class SampleEntry:
    """Where one decoded sample lives in the cache files."""

    name: str
    height: int
    width: int
    image_offset: int
    label_offset: int


@dataclass(frozen=True)
class Manifest:
    """The content of ``manifest.json``."""

    fingerprint: str
    samples: list[SampleEntry]
    splits: dict[str, list[str]]
    excluded: list[Excluded]
    stats: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        """The JSON document (with the cache format number)."""
        return {"format": CACHE_FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Manifest:
        """Parse `to_json`'s output; ``KeyError``/``TypeError``/``ValueError`` when malformed."""
        if document["format"] != CACHE_FORMAT:
            raise ValueError(f"cache format {document['format']}, expected {CACHE_FORMAT}")
        return cls(
            fingerprint=str(document["fingerprint"]),
            samples=[SampleEntry(**entry) for entry in document["samples"]],
            splits={str(name): list(names) for name, names in document["splits"].items()},
            excluded=[Excluded(**entry) for entry in document["excluded"]],
            stats=dict(document["stats"]),
        )


@dataclass(frozen=True)
class BuildResult:
    """A published cache: its folder, its manifest, how many samples this process decoded."""

    directory: Path
    manifest: Manifest
    decoded: int
    reused: bool


def load_manifest(directory: Path, fingerprint: str) -> Manifest | None:
    """The manifest of a complete cache folder; None when absent or unusable (logged)."""
    path = directory / MANIFEST_FILE
    try:
        manifest = Manifest.from_json(json.loads(path.read_text(encoding="utf-8")))
        _check_complete(directory, manifest, fingerprint)
    except FileNotFoundError:
        return None
    except (OSError, KeyError, TypeError, ValueError) as error:
        logger.warning("ignoring unusable cache %s: %s", directory, error)
        return None
    return manifest


def _check_complete(directory: Path, manifest: Manifest, fingerprint: str) -> None:
    if manifest.fingerprint != fingerprint:
        raise ValueError(f"manifest is for {manifest.fingerprint}")
    image_end = max((s.image_offset + s.height * s.width * 3 for s in manifest.samples), default=0)
    label_end = max((s.label_offset + s.height * s.width for s in manifest.samples), default=0)
    for name, end in ((IMAGES_FILE, image_end), (LABELS_FILE, label_end)):
        if (directory / name).stat().st_size < end:
            raise ValueError(f"{name} is shorter than the manifest says")


def build_cache(
    index: VocIndex,
    cache_dir: Path,
    *,
    progress: Progress | bool = False,
    workers: int | None = None,
) -> BuildResult:
    """Decode every sample of ``index`` into a new cache folder and publish it.

    Bad samples are excluded and logged, never fatal; `DatasetError` only when no
    sample at all can be decoded.
    """
    started = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".build-{index.fingerprint}-", dir=cache_dir))
    staging.chmod(0o755)  # mkdtemp's 0o700 would hide the cache from other users' workers
    try:
        manifest = _build_into(staging, index, progress=progress, workers=workers, started=started)
        _sync_folder(staging)
        return _publish(staging, cache_dir / index.fingerprint, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build_into(
    staging: Path,
    index: VocIndex,
    *,
    progress: Progress | bool,
    workers: int | None,
    started: float,
) -> Manifest:
    jobs, excluded = _plan(index)
    images_file, labels_file = _allocate(staging, jobs)
    outcomes = decode_all(jobs, images_file, labels_file, progress=progress, workers=workers)
    excluded += [Excluded(name, reason) for name, reason in outcomes.items() if reason is not None]
    excluded.sort(key=lambda item: item.name)
    for item in excluded:
        logger.warning("%s: excluded sample %s: %s", index.root, item.name, item.reason)
    kept = [job for job in jobs if outcomes[job.name] is None]
    if not kept:
        raise DatasetError(_nothing_decodable(index, excluded))
    good = {job.name for job in kept}
    manifest = Manifest(
        fingerprint=index.fingerprint,
        samples=[
            SampleEntry(j.name, j.height, j.width, j.image_offset, j.label_offset) for j in kept
        ],
        splits={split: [n for n in names if n in good] for split, names in index.splits.items()},
        excluded=excluded,
        stats={"decoded": len(kept), "seconds": round(time.perf_counter() - started, 3)},
    )
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest.to_json(), indent=1), encoding="utf-8")
    return manifest


def _allocate(staging: Path, jobs: list[DecodeJob]) -> tuple[Path, Path]:
    """Create the two data files at their final size (sparse until written)."""
    images_file, labels_file = staging / IMAGES_FILE, staging / LABELS_FILE
    last = jobs[-1] if jobs else None
    pixels = last.height * last.width if last else 0
    ends = (last.image_offset + 3 * pixels, last.label_offset + pixels) if last else (0, 0)
    for path, size in zip((images_file, labels_file), ends, strict=True):
        with path.open("wb") as file:
            file.truncate(size)
    return images_file, labels_file


def _plan(index: VocIndex) -> tuple[list[DecodeJob], list[Excluded]]:
    """Read every sample's size from the file headers and give it its byte offsets."""
    jobs: list[DecodeJob] = []
    excluded: list[Excluded] = []
    image_offset = label_offset = 0
    for name in index.sample_names:
        image_path, label_path = index.image_path(name), index.label_path(name)
        try:
            height, width = probe_sample(image_path, label_path)
        except SampleRejectedError as rejected:
            excluded.append(Excluded(name, str(rejected)))
            continue
        jobs.append(
            DecodeJob(name, image_path, label_path, height, width, image_offset, label_offset)
        )
        image_offset += height * width * 3
        label_offset += height * width
    return jobs, excluded


def _nothing_decodable(index: VocIndex, excluded: list[Excluded]) -> str:
    if not excluded:
        return f"{index.root}: the split files list no sample"
    examples = "; ".join(f"{item.name}: {item.reason}" for item in excluded[:3])
    return f"{index.root}: none of {len(excluded)} samples could be decoded ({examples})"


def _sync_folder(folder: Path) -> None:
    """Flush the files to disk before the rename makes them visible."""
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _publish(staging: Path, target: Path, manifest: Manifest) -> BuildResult:
    """Rename ``staging`` to ``target``; if another build got there first, use theirs."""
    decoded = int(manifest.stats["decoded"])
    for _attempt in range(2):
        try:
            os.rename(staging, target)
        except OSError:
            theirs = load_manifest(target, manifest.fingerprint)
            if theirs is not None:
                return BuildResult(target, theirs, decoded=decoded, reused=True)
            # A leftover folder without a usable manifest: replace it.
            shutil.rmtree(target, ignore_errors=True)
            continue
        return BuildResult(target, manifest, decoded=decoded, reused=False)
    raise DatasetError(f"cannot publish the decoded cache at {target}")

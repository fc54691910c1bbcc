"""WebDataset shards of a VOC-layout split: the original JPEG and PNG files in tar files.

Each sample is two members, ``NAME.jpg`` and ``NAME.png``, the files as stored
(WebDataset groups members by the name before the first dot). The tar files are
deterministic (sorted members, zero times and owners), written once per split
and shard size and kept.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from service.voc import IMAGE_DIR, IMAGE_SUFFIX, LABEL_DIR, LABEL_SUFFIX, SPLIT_DIR

SHARD_SAMPLES = 100


@dataclass(frozen=True)
class Shards:
    """The shard files of a split: their names (in ``folder``), samples and bytes in all."""

    folder: Path
    names: list[str]
    samples: int
    nbytes: int

    def urls(self, base: str) -> list[str]:
        """Each shard's URL below ``base`` (``http://host:port``)."""
        return [f"{base}/{name}" for name in self.names]


def _member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    archive.addfile(info, io.BytesIO(data))


def write_shards(root: Path, split: str, folder: Path, per_shard: int = SHARD_SAMPLES) -> Shards:
    """Shards of ``split`` of the data set at ``root`` in ``folder`` (kept when complete)."""
    names = (root / SPLIT_DIR / f"{split}.txt").read_text().split()
    count = max(1, -(-len(names) // per_shard))
    shard_names = [f"{split}-{i:06d}.tar" for i in range(count)]
    done = folder / f".{split}-{per_shard}.done"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for number, shard in enumerate(shard_names):
            members = names[number * per_shard : (number + 1) * per_shard]
            scratch = folder / f".{shard}.partial"
            with tarfile.open(scratch, "w", format=tarfile.USTAR_FORMAT) as archive:
                for name in members:
                    _member(
                        archive,
                        f"{name}.jpg",
                        (root / IMAGE_DIR / f"{name}{IMAGE_SUFFIX}").read_bytes(),
                    )
                    _member(
                        archive,
                        f"{name}.png",
                        (root / LABEL_DIR / f"{name}{LABEL_SUFFIX}").read_bytes(),
                    )
            scratch.rename(folder / shard)
        done.touch()
    nbytes = sum((folder / shard).stat().st_size for shard in shard_names)
    return Shards(folder, shard_names, len(names), nbytes)

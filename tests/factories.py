"""Tiny VOC-layout datasets for tests, whose image colours tell their classes.

    root = write_voc(tmp_path / "voc", [SampleSpec("a", 40, 60, classes=(15, 1))], {"train": ["a"]})

A sample's label (`label_of`) is background (0) with one rectangle per class of
``SampleSpec.classes``, side by side, each ringed by a ``border``-pixel band of
255 (as VOC outlines its objects). Its JPEG (`image_of`) paints every pixel in
the colour of its label: `IMAGE_COLORS` (the colormap colour for classes 1..20,
white for background, the VOC ignore colour for 255; the same code as
``tests/service/memsource.py``). The colours are far enough apart to survive
JPEG away from edges (`interior`), so `classes_from_image` reads the classes
back from a decoded image, for example to check that a crop's image and label
are aligned; black stays free to mean padding.

Written with Pillow alone, independent of the code under test.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from service.source import U8Array
from service.voc import (
    IGNORE_COLOR,
    IGNORE_INDEX,
    IMAGE_DIR,
    IMAGE_SUFFIX,
    LABEL_DIR,
    LABEL_SUFFIX,
    SPLIT_DIR,
    VOC_COLORMAP,
    voc_palette,
)

BACKGROUND_IMAGE_COLOR = (255, 255, 255)
VOID_IMAGE_COLOR = IGNORE_COLOR

#: Image colour of each label value: index 0..20 and 255 are used, the rest is black.
IMAGE_COLORS: U8Array = np.zeros((256, 3), dtype=np.uint8)
IMAGE_COLORS[1 : len(VOC_COLORMAP)] = VOC_COLORMAP[1:]
IMAGE_COLORS[0] = BACKGROUND_IMAGE_COLOR
IMAGE_COLORS[IGNORE_INDEX] = VOID_IMAGE_COLOR

_LABEL_VALUES = np.array([*range(len(VOC_COLORMAP)), IGNORE_INDEX], dtype=np.uint8)


@dataclass(frozen=True)
class SampleSpec:
    """One sample: ``NAME``, its size, the classes drawn as rectangles, the 255 border width."""

    name: str
    height: int
    width: int
    classes: tuple[int, ...] = (15,)
    border: int = 2


def label_of(spec: SampleSpec) -> U8Array:
    """The class indices (H, W) of ``spec``: rectangles with 255 borders on background."""
    label = np.zeros((spec.height, spec.width), dtype=np.uint8)
    band = spec.width // max(len(spec.classes), 1)
    for k, class_index in enumerate(spec.classes):
        top, bottom = spec.height // 5 + k % 3, spec.height - spec.height // 5
        left, right = k * band + band // 6, (k + 1) * band - band // 6
        b = spec.border
        label[max(top - b, 0) : bottom + b, max(left - b, 0) : right + b] = IGNORE_INDEX
        label[top:bottom, left:right] = class_index
    return label


def image_of(spec: SampleSpec) -> U8Array:
    """The RGB image (H, W, 3) of ``spec``: each pixel in `IMAGE_COLORS` of its label."""
    colors: U8Array = IMAGE_COLORS[label_of(spec)]
    return colors


def classes_from_image(image: U8Array) -> U8Array:
    """Label value (0..20 or 255) whose `IMAGE_COLORS` entry is nearest to each pixel's colour."""
    palette = IMAGE_COLORS[_LABEL_VALUES].astype(np.int32)
    distances = ((image[..., None, :].astype(np.int32) - palette) ** 2).sum(axis=-1)
    nearest: U8Array = _LABEL_VALUES[distances.argmin(axis=-1)]
    return nearest


LabelMode = Literal["P", "RGB", "L"]


def label_picture(label: U8Array, mode: LabelMode) -> Image.Image:
    """``label`` as VOC stores it ('P': index = class, VOC palette), as SBD's trainaug does
    ('L': single channel, value = class) or as colours ('RGB')."""
    if mode == "L":
        return Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8))
    if mode == "P":
        picture = Image.fromarray(label)
        picture.putpalette(voc_palette())
        return picture
    colors = np.zeros((256, 3), dtype=np.uint8)
    colors[: len(VOC_COLORMAP)] = VOC_COLORMAP
    colors[IGNORE_INDEX] = IGNORE_COLOR
    return Image.fromarray(colors[label])


def write_voc(
    root: Path,
    samples: Sequence[SampleSpec],
    splits: Mapping[str, Sequence[str]],
    *,
    label_mode: LabelMode = "P",
    label_dir: str = LABEL_DIR,
    split_dir: str = SPLIT_DIR,
) -> Path:
    """Write ``samples`` and split files (``split name -> NAMEs``) in the VOC layout; return root.

    A split may list names that have no sample: their files are then missing.
    """
    for folder in (IMAGE_DIR, label_dir, split_dir):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for spec in samples:
        Image.fromarray(image_of(spec)).save(
            root / IMAGE_DIR / f"{spec.name}{IMAGE_SUFFIX}", quality=95
        )
        label_picture(label_of(spec), label_mode).save(
            root / label_dir / f"{spec.name}{LABEL_SUFFIX}"
        )
    for split, names in splits.items():
        (root / split_dir / f"{split}.txt").write_text("".join(f"{name}\n" for name in names))
    return root


def truncate_file(path: Path, keep: float = 0.5) -> None:
    """Cut ``path`` to the first ``keep`` fraction of its bytes (a download that stopped early)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def corrupt_file(path: Path) -> None:
    """Overwrite the start of ``path`` so that it is no longer a recognisable picture."""
    data = path.read_bytes()
    path.write_bytes(b"this is not a picture file" + data[26:])


def bump_mtime(path: Path, seconds: int = 10) -> None:
    """Move ``path``'s modification time forward (as a later edit would) without waiting."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))


def interior(label: U8Array, margin: int = 2) -> npt.NDArray[np.bool_]:
    """Pixels whose whole ``margin`` neighbourhood has one label value (JPEG keeps their colour)."""
    height, width = label.shape
    padded = np.pad(label, margin, mode="edge")
    same = np.ones(label.shape, dtype=bool)
    for dy in range(2 * margin + 1):
        for dx in range(2 * margin + 1):
            same &= padded[dy : dy + height, dx : dx + width] == label
    return same


#: A small dataset of mixed sizes and classes; ``2007_000032`` is in both splits.
VOC_SAMPLES = (
    SampleSpec("2007_000032", 48, 64, classes=(1, 15)),
    SampleSpec("2007_000039", 64, 48, classes=(20,)),
    SampleSpec("2007_000063", 40, 72, classes=(8, 12, 15)),
    SampleSpec("2007_000068", 24, 32, classes=(3,)),
    SampleSpec("2007_000121", 56, 56, classes=(7, 19)),
)
VOC_SPLITS = {
    "train": ["2007_000032", "2007_000039", "2007_000063"],
    "val": ["2007_000068", "2007_000121", "2007_000032"],
}

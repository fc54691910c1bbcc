"""A VOC-layout data set of natural photographs, for measurements the demo set would flatter.

The demo set's painted scenes compress far better than real photographs. This
one is cut from the colour photographs that two packages ship in their wheels
(scikit-image's ``skimage/data`` and matplotlib's ``sample_data``; nothing is
downloaded): each sample is a random rescale, crop and horizontal flip of one
photograph at a VOC size (mostly 500 x 375 or 500 x 333, some portrait), with a
mild colour cast, camera-like grain, and saved as JPEG at quality 95 (4:2:0).
Tuned so that the files weigh about what VOC2012's do (measured over 80
samples: 101 KB and 4.6 bits per pixel on average; VOC2012: about 111 KB, 4.7):
a 480 x 320 crop of a decoded sample, at a random offset, is 4.5x smaller as
JPEG 4:4:4 at quality 95 (mean over 80 crops; VOC2012: 4.1x) and 1.49x smaller
after a horizontal byte difference and deflate level 1 (VOC2012 with zstd-1:
1.34x), so these images are, if anything, slightly easier to compress than
VOC's. Their grain makes them harder for JPEG's fidelity: re-encoded at
4:4:4, quality 95, such crops keep 40.0 dB of PSNR at the least and 41.0 on
average (256 crops), where the one VOC2012 crop that API.md reports keeps
43.5 dB.

Labels are plausible rather than exact: each photograph has hand-drawn outlines
of what it shows (``PHOTOS``: a person, a cat, a motorbike, a cup on its saucer
...), a few large regions with smooth edges as in VOC. A sample's label is that
class map under the same rescale, crop and flip (nearest neighbour), with a 255
band 5 px wide on every boundary, as in VOC's palette PNGs. Every step is
integer arithmetic, single IEEE operations, Pillow's resampling and seeded
numpy generators: a (seed, index) gives the same files wherever the Pillow
version is the same.
"""

from __future__ import annotations

import importlib.util
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image, ImageDraw

from service.demo import border_band
from service.folders import publish_folder
from service.source import U8Array
from service.voc import (
    IGNORE_INDEX,
    IMAGE_DIR,
    IMAGE_SUFFIX,
    LABEL_DIR,
    LABEL_SUFFIX,
    SPLIT_DIR,
    voc_palette,
)

Point = tuple[float, float]


@dataclass(frozen=True)
class Photo:
    """A photograph shipped by a package: where it lies, and its objects as (class, outline),
    outlines in fractions of the width and height, painted in order (later ones on top)."""

    package: str
    path: str
    objects: tuple[tuple[int, tuple[Point, ...]], ...]


_PERSON, _CAT, _BOTTLE, _TABLE, _MOTORBIKE, _AEROPLANE = 15, 8, 5, 11, 14, 1
PHOTOS: Final = (
    Photo("skimage", "data/astronaut.png", (
        (_PERSON, ((0.30, 0.05), (0.55, 0.02), (0.60, 0.15), (0.55, 0.28), (0.70, 0.35),
                   (0.72, 0.70), (0.62, 1.0), (0.05, 1.0), (0.05, 0.55), (0.12, 0.35),
                   (0.32, 0.28), (0.28, 0.15))),
        (_AEROPLANE, ((0.76, 0.0), (0.82, 0.0), (0.85, 0.35), (0.92, 0.5), (0.70, 0.52),
                      (0.74, 0.35))),
    )),
    Photo("skimage", "data/chelsea.png", (
        (_CAT, ((0.0, 0.0), (0.88, 0.0), (0.95, 0.35), (0.88, 0.75), (0.72, 1.0), (0.0, 1.0))),
    )),
    Photo("skimage", "data/coffee.png", (
        (_TABLE, ((0.12, 0.30), (0.30, 0.10), (0.75, 0.10), (0.80, 0.45), (0.72, 0.80),
                  (0.50, 0.95), (0.25, 0.85), (0.10, 0.60))),
        (_BOTTLE, ((0.30, 0.12), (0.42, 0.03), (0.62, 0.03), (0.70, 0.15), (0.68, 0.45),
                   (0.58, 0.62), (0.40, 0.62), (0.32, 0.45))),
    )),
    Photo("skimage", "data/motorcycle_left.png", (
        (_MOTORBIKE, ((0.15, 0.55), (0.22, 0.38), (0.45, 0.35), (0.62, 0.30), (0.72, 0.18),
                      (0.82, 0.22), (0.86, 0.45), (0.92, 0.60), (0.90, 0.90), (0.80, 0.92),
                      (0.70, 0.70), (0.40, 0.70), (0.30, 0.80), (0.18, 0.78))),
    )),
    Photo("skimage", "data/motorcycle_right.png", (
        (_MOTORBIKE, ((0.08, 0.55), (0.12, 0.38), (0.35, 0.30), (0.60, 0.28), (0.68, 0.20),
                      (0.78, 0.30), (0.78, 0.50), (0.85, 0.60), (0.83, 0.90), (0.72, 0.92),
                      (0.60, 0.70), (0.35, 0.72), (0.25, 0.85), (0.12, 0.80))),
    )),
    Photo("skimage", "data/rocket.jpg", (
        (_AEROPLANE, ((0.48, 0.32), (0.52, 0.32), (0.535, 0.50), (0.54, 0.92), (0.46, 0.92),
                      (0.465, 0.50))),
    )),
    Photo("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", (
        (_PERSON, ((0.30, 0.05), (0.70, 0.05), (0.72, 0.25), (0.68, 0.45), (0.95, 0.55),
                   (1.0, 1.0), (0.02, 1.0), (0.05, 0.60), (0.32, 0.45), (0.28, 0.25))),
    )),
)  # fmt: skip
"""The colour photographs the set is cut from, and outlines of what they show."""

SIZES: Final = (
    (375, 500), (333, 500), (375, 500), (500, 375), (366, 500), (281, 500), (335, 500),
    (375, 500),
)  # fmt: skip
"""(height, width) drawn for each sample: VOC2012's commonest sizes, a quarter of them too
small for the chapter's 320 x 480 crop filter (which keeps 76 % of VOC2012's train split)."""

JPEG_QUALITY: Final = 95
_GRAIN: Final = 15  # amplitude of the luminance grain; per channel half of it
_PROVIDERS: Final = ("scikit-image", "matplotlib")


class PhotosMissingError(RuntimeError):
    """A package that ships the photographs is not installed."""


def _package_dir(package: str) -> Path:
    """Where ``package`` is installed, found without importing it."""
    spec = importlib.util.find_spec(package)
    locations = spec.submodule_search_locations if spec else None
    if not locations:
        raise PhotosMissingError(
            f"{package} is not installed (pip install {', '.join(_PROVIDERS)})"
        )
    return Path(next(iter(locations)))


def missing_reason() -> str | None:
    """Why the photographs cannot be read here, or None when they can."""
    try:
        for photo in PHOTOS:
            path = _package_dir(photo.package) / photo.path
            if not path.is_file():
                return f"{path} is missing"
    except PhotosMissingError as error:
        return str(error)
    return None


@lru_cache(maxsize=len(PHOTOS))
def photo_pixels(number: int) -> U8Array:
    """Photograph ``number`` of ``PHOTOS`` as uint8 RGB, H x W x 3 (read-only)."""
    photo = PHOTOS[number]
    with Image.open(_package_dir(photo.package) / photo.path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    pixels.setflags(write=False)
    return pixels


@lru_cache(maxsize=len(PHOTOS))
def photo_classes(number: int) -> U8Array:
    """The class map of photograph ``number`` (H x W uint8, no 255 band yet; read-only)."""
    height, width = photo_pixels(number).shape[:2]
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for cls, outline in PHOTOS[number].objects:
        draw.polygon([(x * (width - 1), y * (height - 1)) for x, y in outline], fill=cls)
    label = np.asarray(canvas, dtype=np.uint8).copy()
    label.setflags(write=False)
    return label


def natural_sample(seed: int, index: int) -> tuple[U8Array, U8Array]:
    """Sample ``index`` of the set of ``seed``: a uint8 RGB image and its uint8 label."""
    rng = np.random.default_rng([seed, index])
    number = int(rng.integers(len(PHOTOS)))
    height, width = SIZES[int(rng.integers(len(SIZES)))]
    image, label = _rescaled_crop(rng, photo_pixels(number), photo_classes(number), height, width)
    if rng.integers(2):
        image, label = image[:, ::-1], label[:, ::-1]
    label = np.where(border_band(label), np.uint8(IGNORE_INDEX), label).astype(np.uint8)
    return _develop(rng, image), label


def _rescaled_crop(
    rng: np.random.Generator, image: U8Array, label: U8Array, height: int, width: int
) -> tuple[U8Array, U8Array]:
    """A ``height`` x ``width`` window of both, rescaled by a random factor that covers it."""
    source_h, source_w = label.shape
    cover = max(height / source_h, width / source_w)
    scale = cover * float(1.0 + 0.5 * rng.random())
    size = (max(width, round(source_w * scale)), max(height, round(source_h * scale)))
    top = int(rng.integers(size[1] - height + 1))
    left = int(rng.integers(size[0] - width + 1))
    box = (left, top, left + width, top + height)
    big = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR).crop(box)
    classes = Image.fromarray(label).resize(size, Image.Resampling.NEAREST).crop(box)
    return np.asarray(big, dtype=np.uint8), np.asarray(classes, dtype=np.uint8)


def _develop(rng: np.random.Generator, image: U8Array) -> U8Array:
    """A colour cast and exposure change, then grain: luminance plus a little per channel."""
    gain = (0.9 + 0.2 * rng.random(3)).astype(np.float32)
    offset = np.float32(rng.integers(-12, 13))
    shape = image.shape[:2]
    grain = rng.integers(-_GRAIN, _GRAIN + 1, size=(*shape, 1), dtype=np.int16)
    grain += rng.integers(-_GRAIN, _GRAIN + 1, size=(*shape, 1), dtype=np.int16)
    chroma = rng.integers(-_GRAIN // 2, _GRAIN // 2 + 1, size=image.shape, dtype=np.int16)
    cast = np.rint(image.astype(np.float32) * gain + offset).astype(np.int16)
    developed: U8Array = np.clip(cast + grain // 2 + chroma, 0, 255).astype(np.uint8)
    return developed


def natural_crops(count: int, height: int, width: int, seed: int = 0) -> U8Array:
    """``count`` uint8 RGB crops (N x height x width x 3) of decoded natural samples, as a
    trainer gets them: from the JPEG as stored, at a seeded random offset (samples too
    small skipped). The offset matters: a crop at (0, 0) keeps the stored JPEG's 8 x 8
    block grid, and re-encoding it at the same quality nearly reproduces the stored
    coefficients, which flatters JPEG by several dB of PSNR against the crops at any
    pixel offset that the server cuts."""
    return np.stack([crop for crop, _, _ in natural_crop_samples(count, height, width, seed)])


def natural_crop_samples(
    count: int, height: int, width: int, seed: int = 0
) -> list[tuple[U8Array, U8Array, tuple[int, int, int, int]]]:
    """``count`` (image crop, label crop, rect) of decoded natural samples (see
    :func:`natural_crops`); rect is (top, left, height, width) in the stored image."""
    if min(count, height, width) < 1 or height > max(SIZES)[0] or width > 500:
        raise ValueError(
            f"count >= 1 and crop within 500 x 500 expected, got {count}, {height}x{width}"
        )
    offsets = np.random.default_rng([seed, height, width])
    samples: list[tuple[U8Array, U8Array, tuple[int, int, int, int]]] = []
    index = 0
    while len(samples) < count:
        image, label = natural_sample(seed, index)
        image = decode_jpeg(encode_jpeg(image))  # what the server decodes from JPEGImages/
        index += 1
        if image.shape[0] >= height and image.shape[1] >= width:
            top = int(offsets.integers(image.shape[0] - height + 1))
            left = int(offsets.integers(image.shape[1] - width + 1))
            window = np.s_[top : top + height, left : left + width]
            samples.append(
                (
                    np.ascontiguousarray(image[window]),
                    np.ascontiguousarray(label[window]),
                    (top, left, height, width),
                )
            )
    return samples


def encode_jpeg(image: U8Array) -> bytes:
    """The stored JPEG of a sample image (Pillow, quality 95, 4:2:0, as VOC's files)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=2)
    return buffer.getvalue()


def decode_jpeg(data: bytes) -> U8Array:
    """A JPEG file's pixels as uint8 RGB."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def encode_label(label: U8Array) -> bytes:
    """A label as VOC stores it: a palette PNG whose pixel value is the class."""
    height, width = label.shape
    png = Image.frombytes("P", (width, height), np.ascontiguousarray(label).tobytes())
    png.putpalette(voc_palette())
    buffer = io.BytesIO()
    png.save(buffer, format="PNG")
    return buffer.getvalue()


def write_natural(root: Path, *, train: int, val: int, seed: int = 0) -> Path:
    """Write ``train`` + ``val`` natural samples into ``root`` in the VOC layout; ``root``.

    Names are VOC-like (``2008_000000`` ...); the split files are written last.
    """
    if train < 0 or val < 0 or seed < 0:
        raise ValueError(f"train, val and seed must be >= 0, got {train}, {val}, {seed}")
    reason = missing_reason()
    if reason:
        raise PhotosMissingError(reason)
    for folder in (IMAGE_DIR, LABEL_DIR, SPLIT_DIR):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = [f"2008_{index:06d}" for index in range(train + val)]
    for index, name in enumerate(names):
        image, label = natural_sample(seed, index)
        (root / IMAGE_DIR / f"{name}{IMAGE_SUFFIX}").write_bytes(encode_jpeg(image))
        (root / LABEL_DIR / f"{name}{LABEL_SUFFIX}").write_bytes(encode_label(label))
    splits = {"train": names[:train], "val": names[train:], "trainval": names}
    for split, members in splits.items():
        (root / SPLIT_DIR / f"{split}.txt").write_text("".join(f"{n}\n" for n in members))
    return root


def ensure_natural(cache_dir: Path, *, train: int, val: int, seed: int = 0) -> Path:
    """``cache_dir/natural-<train>-<val>-<seed>``, written first when it is not there.

    Published with :func:`service.folders.publish_folder`, so that it is
    complete whenever it exists.
    """
    target = cache_dir / f"natural-{train}-{val}-{seed}"
    return publish_folder(
        target, lambda scratch: write_natural(scratch, train=train, val=val, seed=seed)
    )

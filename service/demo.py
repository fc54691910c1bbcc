"""A synthetic data set in the exact Pascal VOC2012 segmentation layout.

JPEG pictures, palette PNG labels (class index per pixel, 255 borders about 5 px
wide around every object) and split files, sized like VOC (mostly 500 x 333..375,
some portrait and some small ones: the 320 x 480 crop filter keeps about three
quarters). Objects are painted in their class colour (`CLASS_COLORS`) with light,
stripes and noise over a textured scene. Sample i of ``trainval`` is a pure function
of (seed, i), drawn without per-pixel transcendental functions (whose last bit may
differ between CPUs): the files are byte-identical for a seed, however written.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import lru_cache
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from service.folders import publish_folder
from service.progress import Progress, as_progress
from service.source import U8Array
from service.voc import (
    IGNORE_INDEX,
    IMAGE_DIR,
    IMAGE_SUFFIX,
    LABEL_DIR,
    LABEL_SUFFIX,
    NUM_CLASSES,
    SPLIT_DIR,
    voc_palette,
)

RGB = tuple[int, int, int]
F32Array = npt.NDArray[np.float32]

CLASS_COLORS: Final[dict[int, RGB]] = {
    1: (170, 175, 185), 2: (40, 80, 200), 3: (225, 120, 30), 4: (250, 250, 250),
    5: (40, 150, 70), 6: (250, 215, 30), 7: (200, 25, 40), 8: (100, 100, 110),
    9: (150, 95, 175), 10: (25, 25, 25), 11: (160, 110, 50), 12: (225, 175, 125),
    13: (110, 50, 15), 14: (20, 20, 110), 15: (245, 130, 175), 16: (130, 200, 50),
    17: (235, 230, 175), 18: (0, 140, 150), 19: (140, 10, 100), 20: (80, 200, 240),
}  # fmt: skip
"""Base colour in which objects of each class (1..20) are painted."""

# (upper, lower) colours of the background scenes: sky/grass, room, sea/sand, street, forest.
_SCENES: Final = (
    ((150, 190, 230), (95, 140, 70)), ((215, 205, 185), (135, 105, 80)),
    ((110, 160, 205), (215, 195, 150)), ((95, 95, 135), (70, 70, 65)),
    ((60, 90, 60), (100, 80, 50)),
)  # fmt: skip
_BORDER: Final = 5  # width of the 255 band around every object, as in real VOC labels
_QUALITY, _SUBSAMPLING = 90, 2  # JPEG; subsampling 2 = 4:2:0, as in VOC's own JPEGs
_YEARS: Final = (2007, 2008, 2009, 2010, 2011)
_YEAR_SHARE: Final = (0.15, 0.2, 0.2, 0.2, 0.25)
_NAMES_STREAM, _SAMPLE_STREAM, _NOISE_STREAM = 1, 2, 3
_NOISE_SIDE: Final = 512  # noise tile; VOC pictures are at most 500 px on a side
_CHUNK: Final = 24  # samples per task given to a worker process
_PARALLEL_MIN: Final = 96  # below this many samples a process pool costs more than it saves


class _Object(NamedTuple):
    label: int
    cx: float
    cy: float
    radius: float
    outline: list[tuple[int, int]]


def render_sample(seed: int, index: int) -> tuple[U8Array, U8Array]:
    """Sample ``index`` (position in ``trainval``) of the demo set for ``seed``.

    Returns the RGB image, (H, W, 3) uint8, and its class indices, (H, W) uint8 with
    255 borders, before JPEG/PNG encoding.
    """
    rng = np.random.default_rng([seed, _SAMPLE_STREAM, index])
    height, width = _image_size(rng)
    objects = _objects(rng, height, width)
    ids = _object_ids(objects, height, width)
    canvas = _scene(rng, height, width)
    for number, obj in enumerate(objects, start=1):
        _paint(canvas, ids == number, obj, rng)
    top, left = rng.integers(0, _NOISE_SIDE - height + 1), rng.integers(0, _NOISE_SIDE - width + 1)
    canvas += _noise_tile(seed)[top : top + height, left : left + width]
    image = np.clip(canvas, 0, 255, out=canvas).astype(np.uint8)
    classes = np.array([0, *(obj.label for obj in objects)], dtype=np.uint8)
    label = classes[ids]
    label[border_band(ids)] = IGNORE_INDEX
    return image, label


def _image_size(rng: np.random.Generator) -> tuple[int, int]:
    """(height, width) drawn like VOC: landscape 75 %, portrait 17 %, too small 8 %."""
    kind, other = rng.random(), int(rng.integers(320, 401))
    side = int(rng.choice((375, 333, other), p=(0.5, 0.25, 0.25)))  # the short side
    if kind < 0.75:
        return side, 500
    if kind < 0.92:
        return 500, side
    if kind < 0.96:
        return int(rng.integers(180, 320)), 500
    return int(rng.integers(150, 400)), int(rng.integers(200, 480))


def _objects(rng: np.random.Generator, height: int, width: int) -> list[_Object]:
    """1-4 objects of random classes, larger ones first so they sit behind smaller ones."""
    count = int(rng.choice(4, p=(0.4, 0.3, 0.2, 0.1))) + 1
    objects = []
    for _ in range(count):
        label = int(rng.integers(1, NUM_CLASSES))
        cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height
        rx, ry = rng.uniform(0.1, 0.35, size=2) * min(height, width) * np.array([1.4, 1.0])
        outline = _outline(rng, cx, cy, float(rx), float(ry))
        objects.append(_Object(label, cx, cy, float(max(rx, ry)), outline))
    return sorted(objects, key=lambda obj: -obj.radius)


def _outline(
    rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float
) -> list[tuple[int, int]]:
    """Vertices of an ellipse, a rectangle or a star-shaped polygon, turned at random."""
    kind = int(rng.integers(3))
    if kind == 0:
        turns, reach = [i / 48 for i in range(48)], [1.0] * 48
    elif kind == 1:
        turns, reach = [0.125, 0.375, 0.625, 0.875], [math.sqrt(2)] * 4
    else:
        sides = int(rng.integers(5, 10))
        turns = sorted(rng.uniform(0, 1, size=sides).tolist())
        reach = rng.uniform(0.55, 1.0, size=sides).tolist()
    angle = rng.uniform(0, 2 * math.pi)
    cos, sin = math.cos(angle), math.sin(angle)
    points = []
    for turn, r in zip(turns, reach, strict=True):
        x = rx * r * math.cos(2 * math.pi * turn)
        y = ry * r * math.sin(2 * math.pi * turn)
        points.append((round(cx + x * cos - y * sin), round(cy + x * sin + y * cos)))
    return points


def _object_ids(objects: list[_Object], height: int, width: int) -> U8Array:
    """Which object (1-based, in drawing order; 0 = background) each pixel shows."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for number, obj in enumerate(objects, start=1):
        draw.polygon(obj.outline, fill=number)
    return np.asarray(canvas, dtype=np.uint8)


def _scene(rng: np.random.Generator, height: int, width: int) -> F32Array:
    """A two-tone background (upper and lower colour, soft horizon) with wavy texture."""
    upper, lower = (np.array(c, np.float32) for c in _SCENES[int(rng.integers(len(_SCENES)))])
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    horizon, soft = rng.uniform(0.35, 0.7) * height, np.float32(0.08 * height)
    blend = np.clip((rows - np.float32(horizon)) / soft + np.float32(0.5), 0, 1)[:, :, None]
    blend = blend * blend * (3 - 2 * blend)  # smoothstep
    light = np.float32(rng.uniform(-40, 40)) * (cols / np.float32(width) - np.float32(0.5))
    across = _wave(cols, rng.uniform(20, 90), 6) + light
    texture = _wave(rows, rng.uniform(15, 60), 6) + across
    scene: F32Array = upper + (lower - upper) * blend + texture[:, :, None]
    return scene


def _wave(coords: F32Array, period: float, amplitude: float) -> F32Array:
    """A triangle wave from -amplitude to amplitude (exact arithmetic, unlike sin)."""
    phase = coords / np.float32(period)
    wave: F32Array = (np.abs(phase - np.floor(phase) - 0.5) * 4 - 1) * np.float32(amplitude)
    return wave


def _paint(
    canvas: F32Array, mask: npt.NDArray[np.bool_], obj: _Object, rng: np.random.Generator
) -> None:
    """Paint one object's visible pixels: class colour, a light gradient and stripes."""
    rows, cols = np.nonzero(mask)
    direction = rng.uniform(-1, 1, size=2).astype(np.float32)
    stripe = rng.uniform(-1, 1, size=2).astype(np.float32)
    period, amplitude = rng.uniform(6, 24), rng.uniform(6, 14)
    if rows.size == 0:
        return
    y = rows.astype(np.float32) - np.float32(obj.cy)
    x = cols.astype(np.float32) - np.float32(obj.cx)
    # Additive light keeps every pixel near the class colour, whatever part is visible.
    light = np.clip((direction[0] * x + direction[1] * y) / np.float32(obj.radius), -1, 1) * 16
    texture = _wave(stripe[0] * x + stripe[1] * y, period, amplitude)
    base = np.array(CLASS_COLORS[obj.label], np.float32)
    canvas[rows, cols] = base + (light + texture)[:, None]


@lru_cache(maxsize=2)
def _noise_tile(seed: int) -> F32Array:
    """Pixel noise shared by every sample of a seed (each takes its own window of it)."""
    rng = np.random.default_rng([seed, _NOISE_STREAM])
    shape = (_NOISE_SIDE, _NOISE_SIDE, 3)
    noise = rng.integers(-6, 7, size=shape) + rng.integers(-6, 7, size=shape)
    tile = noise.astype(np.float32) + np.float32(0.5)  # + 0.5: rounds when cast to uint8
    tile.setflags(write=False)
    return tile


def border_band(ids: U8Array) -> npt.NDArray[np.bool_]:
    """A band ``_BORDER`` px wide centred on every boundary between two objects or background."""
    edge = np.zeros(ids.shape, dtype=bool)
    edge[:, :-1] = ids[:, :-1] != ids[:, 1:]
    edge[:-1, :] |= ids[:-1, :] != ids[1:, :]
    return _dilate_rows(_dilate_rows(edge).T).T


def _dilate_rows(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    out = mask.copy()
    for shift in range(1, _BORDER // 2 + 1):
        out[:, shift:] |= mask[:, :-shift]
        out[:, :-shift] |= mask[:, shift:]
    return out


def _split_names(train: int, val: int, seed: int) -> tuple[list[str], list[str]]:
    """VOC-style names (``2007_000032``), sorted within each split as in VOC."""
    rng = np.random.default_rng([seed, _NAMES_STREAM, train, val])
    names = []
    for year, count in zip(_YEARS, rng.multinomial(train + val, _YEAR_SHARE), strict=True):
        numbers = np.cumsum(rng.integers(1, 12, size=count))
        names += [f"{year}_{number:06d}" for number in numbers]
    order = rng.permutation(len(names))
    return sorted(names[i] for i in order[:train]), sorted(names[i] for i in order[train:])


def _write_chunk(root: Path, seed: int, start: int, names: list[str]) -> int:
    """Render and encode the samples at ``trainval`` positions start, start + 1, ..."""
    palette = voc_palette()
    for index, name in enumerate(names, start=start):
        image, label = render_sample(seed, index)
        jpeg = root / IMAGE_DIR / f"{name}{IMAGE_SUFFIX}"
        Image.fromarray(image).save(jpeg, "JPEG", quality=_QUALITY, subsampling=_SUBSAMPLING)
        height, width = label.shape
        png = Image.frombytes("P", (width, height), label.tobytes())
        png.putpalette(palette)
        png.save(root / LABEL_DIR / f"{name}{LABEL_SUFFIX}", format="PNG")
    return len(names)


def _worker_count(samples: int) -> int:
    """Processes to write with: one per CPU (up to 4) for a large set, if forking is safe.

    Forking a process that runs other threads can deadlock the child, and spawn
    would re-run the caller's ``__main__``; with other threads, write in-process.
    """
    if samples < _PARALLEL_MIN or threading.active_count() > 1:
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), 4))


def _write_samples(root: Path, names: list[str], seed: int, progress: Progress | bool) -> None:
    chunks = [(start, names[start : start + _CHUNK]) for start in range(0, len(names), _CHUNK)]
    workers = _worker_count(len(names))
    with as_progress(progress).phase("generating demo data", len(names), "images") as advance:
        if workers == 1:
            for chunk in chunks:
                advance(_write_chunk(root, seed, *chunk))
            return
        # The first submit forks every worker, before the pool starts its threads.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_write_chunk, root, seed, *chunk) for chunk in chunks]
            try:
                for future in as_completed(futures):
                    advance(future.result())
            finally:
                for future in futures:
                    future.cancel()


def write_demo(
    root: Path,
    *,
    train: int = 1464,
    val: int = 1449,
    seed: int = 0,
    progress: Progress | bool = False,
) -> Path:
    """Write a synthetic VOC2012-layout data set of ``train`` + ``val`` samples into ``root``.

    The split files come last, so an interrupted run leaves no split that lists
    missing files. Same arguments, same bytes. Returns ``root``.
    """
    if train < 0 or val < 0 or seed < 0:
        raise ValueError(f"train, val and seed must be >= 0, got {train}, {val}, {seed}")
    train_names, val_names = _split_names(train, val, seed)
    for folder in (IMAGE_DIR, LABEL_DIR, SPLIT_DIR):
        (root / folder).mkdir(parents=True, exist_ok=True)
    _write_samples(root, train_names + val_names, seed, progress)
    splits = {"train": train_names, "val": val_names, "trainval": train_names + val_names}
    for split, names in splits.items():
        (root / SPLIT_DIR / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    return root


def ensure_demo(
    cache_dir: Path, *, train: int, val: int, seed: int, progress: Progress | bool = False
) -> Path:
    """``cache_dir/demo-<train>-<val>-<seed>``, written first if it is not there yet.

    Published with :func:`service.folders.publish_folder`: complete whenever it
    exists, and a process that loses a race to write it returns the winner's.
    """
    target = cache_dir / f"demo-{train}-{val}-{seed}"

    def write(scratch: Path) -> None:
        write_demo(scratch, train=train, val=val, seed=seed, progress=progress)

    return publish_folder(target, write)

"""An in-memory SplitSource for tests, and images whose colour encodes each pixel's class.

In a "coded" sample every pixel's colour is a function of its class
(:data:`CODE_COLORS`), so any crop of the image can be decoded back into the
classes it shows and compared with the label crop: that checks that image and
label were cropped, flipped and rescaled together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from service.voc import IGNORE_COLOR, IGNORE_INDEX, NUM_CLASSES, VOC_COLORMAP

U8Array = npt.NDArray[np.uint8]

# Class k -> its VOC colour, except background, which is white so that black
# stays free for padding; 255 (void) -> the VOC ignore colour.
CODE_COLORS = np.zeros((256, 3), dtype=np.uint8)
CODE_COLORS[:NUM_CLASSES] = VOC_COLORMAP
CODE_COLORS[0] = (255, 255, 255)
CODE_COLORS[IGNORE_INDEX] = IGNORE_COLOR
_DECODABLE = np.array([*range(NUM_CLASSES), IGNORE_INDEX], dtype=np.uint8)
PAD = 254  # what decode_classes reports for black (padded) pixels


@dataclass
class MemorySource:
    """A split held in lists of arrays; implements ``service.source.SplitSource``."""

    name: str
    images: list[U8Array]
    labels: list[U8Array]
    heights: npt.NDArray[np.int32] = field(init=False)
    widths: npt.NDArray[np.int32] = field(init=False)

    def __post_init__(self) -> None:
        for image, label in zip(self.images, self.labels, strict=True):
            assert image.shape == (*label.shape, 3)
            image.setflags(write=False)
            label.setflags(write=False)
        self.heights = np.array([lab.shape[0] for lab in self.labels], dtype=np.int32)
        self.widths = np.array([lab.shape[1] for lab in self.labels], dtype=np.int32)

    @property
    def ids(self) -> list[str]:
        """Sample names."""
        return [f"{self.name}_{i:05d}" for i in range(len(self.labels))]

    def image(self, index: int) -> U8Array:
        """(H, W, 3) uint8, read-only."""
        return self.images[index]

    def label(self, index: int) -> U8Array:
        """(H, W) uint8, read-only."""
        return self.labels[index]


def coded_label(height: int, width: int, rng: np.random.Generator, block: int) -> U8Array:
    """Random classes (and some 255) constant over ``block`` x ``block`` squares."""
    rows, cols = -(-height // block), -(-width // block)
    grid = rng.choice(_DECODABLE, size=(rows, cols))
    return np.ascontiguousarray(np.kron(grid, np.ones((block, block), np.uint8))[:height, :width])


def coded_source(
    sizes: Sequence[tuple[int, int]], seed: int = 0, block: int = 4, name: str = "train"
) -> MemorySource:
    """A source of the given (height, width) samples whose image colours encode the labels."""
    rng = np.random.default_rng(seed)
    labels = [coded_label(h, w, rng, block) for h, w in sizes]
    images = [np.ascontiguousarray(CODE_COLORS[lab]) for lab in labels]
    return MemorySource(name, images, labels)


def decode_classes(image: U8Array) -> U8Array:
    """The class whose code colour is nearest to each pixel; :data:`PAD` for black."""
    palette = np.concatenate([CODE_COLORS[_DECODABLE], np.zeros((1, 3), np.uint8)])
    values = np.append(_DECODABLE, np.uint8(PAD))
    diff = image[..., np.newaxis, :].astype(np.int32) - palette.astype(np.int32)
    nearest = np.argmin((diff * diff).sum(axis=-1), axis=-1)
    classes: U8Array = values[nearest]
    return classes


def random_source(
    sizes: Sequence[tuple[int, int]], seed: int = 0, name: str = "train"
) -> MemorySource:
    """A source of random pixels and random labels (classes and 255)."""
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in sizes]
    labels = [rng.choice(_DECODABLE, size=(h, w)) for h, w in sizes]
    return MemorySource(name, images, labels)

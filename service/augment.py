"""One sample's crop pair: optional rescale, pad, crop, optional horizontal flip.

The random choices come as uniforms in [0, 1) (see
:func:`service.sampling.sample_uniforms`), so every step here is a pure
function. In order:

1. rescale (``scale``): factor ``lo + u0 * (hi - lo)``, new size rounded;
   bilinear for the image, nearest for the label;
2. pad bottom/right up to the crop size when smaller (image 0, label 255);
3. crop ``(top, left, height, width)``, uniform over the valid offsets;
4. flip (``flip``): horizontal, with probability 0.5, both image and label.

With a rescale, only the part of the source under the crop is resampled
(Pillow's ``resize(box=...)``), so a large factor costs no more than a small one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
from PIL import Image

from service.params import CropSpec
from service.source import U8Array
from service.voc import IGNORE_INDEX

F64Array = npt.NDArray[np.float64]

# Uniforms a sample consumes: scale factor, top offset, left offset, flip.
NUM_UNIFORMS: Final = 4


class Rect(NamedTuple):
    """A crop rectangle in the (rescaled, padded) source: top, left, height, width."""

    top: int
    left: int
    height: int
    width: int


@dataclass(frozen=True)
class SamplePlan:
    """Every choice made for one sample: source size after rescale, the crop, the flip."""

    height: int
    width: int
    rect: Rect
    flip: bool


def scale_factor(scale: tuple[float, float], u: float) -> float:
    """The rescale factor drawn uniformly from ``[lo, hi]`` by ``u`` in [0, 1)."""
    lo, hi = scale
    return lo + u * (hi - lo)


def scaled_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """``(height, width)`` times ``factor``, rounded, at least 1."""
    return max(1, round(height * factor)), max(1, round(width * factor))


def _offset(size: int, crop: int, u: float) -> int:
    """An offset uniform over ``0 .. max(size, crop) - crop`` drawn by ``u`` in [0, 1)."""
    choices = max(size, crop) - crop + 1
    return min(math.floor(u * choices), choices - 1)


def crop_rect(
    height: int, width: int, crop_height: int, crop_width: int, u_top: float, u_left: float
) -> Rect:
    """The crop of a ``height`` x ``width`` image (padded bottom/right up to the crop size)."""
    top = _offset(height, crop_height, u_top)
    left = _offset(width, crop_width, u_left)
    return Rect(top, left, crop_height, crop_width)


def plan_sample(height: int, width: int, crop: CropSpec, uniforms: F64Array) -> SamplePlan:
    """Turn a sample's size and its :data:`NUM_UNIFORMS` uniforms into a :class:`SamplePlan`."""
    u = [float(v) for v in uniforms[:NUM_UNIFORMS]]
    if crop.scale is not None:
        height, width = scaled_size(height, width, scale_factor(crop.scale, u[0]))
    rect = crop_rect(height, width, crop.height, crop.width, u[1], u[2])
    return SamplePlan(height, width, rect, crop.flip and u[3] < 0.5)


def write_crop(
    image: U8Array, label: U8Array, plan: SamplePlan, out_image: U8Array, out_label: U8Array
) -> None:
    """Write the planned crop of ``image`` (H, W, 3) and ``label`` (H, W) into the output slots.

    ``out_image`` is (h, w, 3) and ``out_label`` (h, w), h x w the crop size;
    padding is 0 in the image and 255 in the label.
    """
    rect = plan.rect
    rows = min(rect.height, plan.height - rect.top)
    cols = min(rect.width, plan.width - rect.left)
    if plan.flip:
        # Writing through reversed views flips the whole crop, padding included.
        out_image, out_label = out_image[:, ::-1], out_label[:, ::-1]
    out_image[rows:], out_image[:rows, cols:] = 0, 0
    out_label[rows:], out_label[:rows, cols:] = IGNORE_INDEX, IGNORE_INDEX
    if (plan.height, plan.width) == label.shape:
        window = np.s_[rect.top : rect.top + rows, rect.left : rect.left + cols]
        src_image, src_label = image[window], label[window]
    else:
        src_image, src_label = _resampled(image, label, plan, rows, cols)
    _copy_image(out_image[:rows, :cols], src_image)
    np.copyto(out_label[:rows, :cols], src_label)


def _resampled(
    image: U8Array, label: U8Array, plan: SamplePlan, rows: int, cols: int
) -> tuple[U8Array, U8Array]:
    """The ``rows`` x ``cols`` part of the rescaled sample under the crop."""
    src_h, src_w = label.shape
    top, left = plan.rect.top, plan.rect.left
    fy, fx = src_h / plan.height, src_w / plan.width
    box = (left * fx, top * fy, min((left + cols) * fx, src_w), min((top + rows) * fy, src_h))
    rgb = Image.fromarray(np.ascontiguousarray(image))
    out_rgb = np.asarray(rgb.resize((cols, rows), Image.Resampling.BILINEAR, box=box))
    ys = nearest_sources(top, rows, src_h, plan.height)
    xs = nearest_sources(left, cols, src_w, plan.width)
    return out_rgb, label[ys[:, np.newaxis], xs[np.newaxis, :]]


def nearest_sources(start: int, count: int, size: int, scaled: int) -> npt.NDArray[np.int64]:
    """Source pixel under each of pixels ``start .. start+count-1`` of a ``size`` -> ``scaled``
    nearest-neighbour rescale: ``floor((p + 1/2) * size / scaled)``, in exact integers."""
    positions = np.arange(start, start + count, dtype=np.int64)
    return np.minimum(((2 * positions + 1) * size) // (2 * scaled), size - 1)


def _copy_image(dest: U8Array, src: U8Array) -> None:
    """``dest[...] = src`` for (h, w, 3) uint8; per channel when ``dest`` is reversed.

    numpy copies interleaved 3-byte pixels through a negative stride an order
    of magnitude slower than three single-channel copies.
    """
    if dest.strides[1] < 0:
        for c in range(3):
            np.copyto(dest[..., c], src[..., c])
    else:
        np.copyto(dest, src)

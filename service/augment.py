"""One sample's crop pair: optional rescale, pad, crop, optional horizontal flip.

The random choices come as uniforms in [0, 1) (see
:func:`service.sampling.sample_uniforms`), so every step here is a pure
function. In order:

1. rescale (``scale``): factor ``lo + u0 * (hi - lo)``, new size rounded;
   bilinear for the image, nearest for the label;
2. pad bottom/right up to the crop size when smaller (image 0, label 255);
3. crop ``(top, left, height, width)``: by ``crop_mode``, uniform over the
   valid offsets (``random``; with ``cat_max_ratio`` < 1 redrawn as
   mmsegmentation's ``RandomCrop`` does, see :func:`balanced_rect`), the
   centred window (``center``), or the whole image on the canvas (``full``);
4. flip (``flip``): horizontal, with probability 0.5, both image and label
   (under ``full`` the image is mirrored in place and stays top-left);
5. photometric distortion (``photometric``) of the image crop's pixels, not
   of its padding (:mod:`service.photometric`).

A sample's uniforms: columns 0..3 are scale, top, left, flip (all a request
without the recipe parameters uses, so its bytes do not change); then the
photometric draws; then two per window redraw.

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

from service import photometric
from service.params import CropSpec
from service.source import U8Array
from service.voc import IGNORE_INDEX, NUM_CLASSES

F64Array = npt.NDArray[np.float64]

# Uniforms of the crop itself: scale factor, top offset, left offset, flip.
NUM_UNIFORMS: Final = 4
PHOTOMETRIC_COLUMN: Final = NUM_UNIFORMS
CAT_MAX_REDRAWS: Final = 10
"""Window redraws of ``cat_max_ratio``, as mmsegmentation's ``RandomCrop``."""
REDRAW_COLUMN: Final = PHOTOMETRIC_COLUMN + photometric.NUM_UNIFORMS
SAMPLE_UNIFORMS: Final = REDRAW_COLUMN + 2 * CAT_MAX_REDRAWS
"""Uniforms a sample consumes in all: the crop's, the photometric draws, the redraws."""


class Rect(NamedTuple):
    """A crop rectangle in the (rescaled, padded) source: top, left, height, width."""

    top: int
    left: int
    height: int
    width: int


@dataclass(frozen=True)
class SamplePlan:
    """Every choice made for one sample: source size after rescale, the crop, the flip.

    ``anchored``: the image stays at the top-left of the canvas (``crop_mode=full``),
    so a flip mirrors the image within its place rather than the whole canvas.
    ``distortion``: the photometric draws, ``None`` without ``photometric``.
    """

    height: int
    width: int
    rect: Rect
    flip: bool
    anchored: bool = False
    distortion: photometric.Distortion | None = None


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


def center_rect(height: int, width: int, crop_height: int, crop_width: int) -> Rect:
    """The centred crop: top ``(height - crop_height) // 2``, left likewise (0 when smaller)."""
    top, left = max(height - crop_height, 0) // 2, max(width - crop_width, 0) // 2
    return Rect(top, left, crop_height, crop_width)


def plan_sample(
    height: int, width: int, crop: CropSpec, uniforms: F64Array, label: U8Array | None = None
) -> SamplePlan:
    """Turn a sample's size and its uniforms into a :class:`SamplePlan`.

    ``uniforms`` holds :data:`NUM_UNIFORMS` values, or :data:`SAMPLE_UNIFORMS`
    when ``photometric`` or ``cat_max_ratio`` need theirs; ``label`` (the
    sample's stored label) is needed for ``cat_max_ratio`` < 1.
    """
    u = [float(v) for v in uniforms[:NUM_UNIFORMS]]
    if crop.scale is not None:
        height, width = scaled_size(height, width, scale_factor(crop.scale, u[0]))
    if crop.crop_mode == "full":
        rect = Rect(0, 0, height, width)
    elif crop.crop_mode == "center":
        rect = center_rect(height, width, crop.height, crop.width)
    elif crop.cat_max_ratio < 1.0:
        if label is None:
            raise ValueError("cat_max_ratio < 1 needs the sample's label")
        rect = balanced_rect(label, height, width, crop, uniforms)
    else:
        rect = crop_rect(height, width, crop.height, crop.width, u[1], u[2])
    distortion = None
    if crop.photometric:
        draws = uniforms[PHOTOMETRIC_COLUMN : PHOTOMETRIC_COLUMN + photometric.NUM_UNIFORMS]
        distortion = photometric.draw_distortion(draws)
    flip = crop.flip and u[3] < 0.5
    return SamplePlan(height, width, rect, flip, crop.crop_mode == "full", distortion)


def balanced_rect(
    label: U8Array, height: int, width: int, crop: CropSpec, uniforms: F64Array
) -> Rect:
    """mmsegmentation's ``RandomCrop(cat_max_ratio=r)`` window of a ``height`` x ``width`` source.

    Window 0 is the plain random crop; while the current window is not
    :func:`balanced` and fewer than :data:`CAT_MAX_REDRAWS` redraws were made,
    the window is redrawn (redraw ``t`` from uniforms ``REDRAW_COLUMN + 2(t-1)``
    and the next). After 10 failed checks the 10th redraw is kept unchecked.
    """
    u = uniforms
    classes = present_classes(label)
    rect = crop_rect(height, width, crop.height, crop.width, float(u[1]), float(u[2]))
    for redraw in range(CAT_MAX_REDRAWS):
        window = label_window(label, height, width, rect)
        if balanced(window, crop.cat_max_ratio, classes):
            break
        column = REDRAW_COLUMN + 2 * redraw
        u_top, u_left = float(u[column]), float(u[column + 1])
        rect = crop_rect(height, width, crop.height, crop.width, u_top, u_left)
    return rect


def present_classes(label: U8Array) -> list[int]:
    """The classes 0..20 that occur in ``label``."""
    counts = np.bincount(label.reshape(-1), minlength=256)[:NUM_CLASSES]
    return [int(c) for c in np.flatnonzero(counts)]


def balanced(window: U8Array, ratio: float, classes: list[int] | None = None) -> bool:
    """Whether a label window has two or more classes and none covers ``ratio`` or more of
    its non-ignore pixels (mmsegmentation's test: ``max(cnt) / sum(cnt) < ratio``).

    ``classes``: the classes that may occur (those of the whole label); counting
    only them, one comparison each, is several times faster than a histogram
    of every window.
    """
    if classes is None:
        classes = present_classes(window)
    counts = [np.count_nonzero(window == c) for c in classes]
    total = sum(counts)
    return sum(1 for n in counts if n) > 1 and max(counts) / total < ratio


def label_window(label: U8Array, height: int, width: int, rect: Rect) -> U8Array:
    """The label pixels under ``rect`` of the ``height`` x ``width`` (rescaled) source.

    Only the part inside the source: padding, all ignore, is left out.
    """
    rows = min(rect.height, height - rect.top)
    cols = min(rect.width, width - rect.left)
    src_h, src_w = label.shape
    if (height, width) == (src_h, src_w):
        return label[rect.top : rect.top + rows, rect.left : rect.left + cols]
    ys = nearest_sources(rect.top, rows, src_h, height)
    xs = nearest_sources(rect.left, cols, src_w, width)
    # Rows, then columns: two takes are faster than one broadcast fancy index.
    window: U8Array = np.take(np.take(label, ys, axis=0), xs, axis=1)
    return window


def write_crop(
    image: U8Array, label: U8Array, plan: SamplePlan, out_image: U8Array, out_label: U8Array
) -> None:
    """Write the planned crop of ``image`` (H, W, 3) and ``label`` (H, W) into the output slots.

    ``out_image`` is (h, w, 3) and ``out_label`` (h, w), h x w the crop size;
    padding is 0 in the image and 255 in the label. The photometric
    distortion applies to the source pixels only, never to the padding.
    """
    rect = plan.rect
    rows = min(rect.height, plan.height - rect.top)
    cols = min(rect.width, plan.width - rect.left)
    if plan.flip and not plan.anchored:
        # Writing through reversed views flips the whole crop, padding included.
        out_image, out_label = out_image[:, ::-1], out_label[:, ::-1]
    out_image[rows:], out_image[:rows, cols:] = 0, 0
    out_label[rows:], out_label[:rows, cols:] = IGNORE_INDEX, IGNORE_INDEX
    dest_image, dest_label = out_image[:rows, :cols], out_label[:rows, :cols]
    if plan.flip and plan.anchored:
        dest_image, dest_label = dest_image[:, ::-1], dest_label[:, ::-1]
    if (plan.height, plan.width) == label.shape:
        src_image = image[rect.top : rect.top + rows, rect.left : rect.left + cols]
    else:
        src_image = _resampled(image, plan, rows, cols)
    _copy_image(dest_image, src_image)
    np.copyto(dest_label, label_window(label, plan.height, plan.width, rect))
    if plan.distortion is not None:
        photometric.distort(dest_image, plan.distortion)


def _resampled(image: U8Array, plan: SamplePlan, rows: int, cols: int) -> U8Array:
    """The ``rows`` x ``cols`` part of the rescaled image under the crop (bilinear)."""
    src_h, src_w = image.shape[:2]
    top, left = plan.rect.top, plan.rect.left
    fy, fx = src_h / plan.height, src_w / plan.width
    box = (left * fx, top * fy, min((left + cols) * fx, src_w), min((top + rows) * fy, src_h))
    rgb = Image.fromarray(np.ascontiguousarray(image))
    resized: U8Array = np.asarray(rgb.resize((cols, rows), Image.Resampling.BILINEAR, box=box))
    return resized


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

"""Thumbnails: small copies of images and labels, sized on the server for galleries.

A thumbnail fits in a ``size`` x ``size`` square and keeps the aspect ratio; it
is never larger than the source. Images are resampled with PIL's antialiased
bilinear filter; labels take the nearest source pixel, so every thumbnail pixel
is still a class index of the source (no blended, meaningless values).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from service.errors import InvalidParameterError
from service.source import U8Array

MIN_THUMBNAIL: Final = 16
MAX_THUMBNAIL: Final = 1024
THUMBNAIL_QUALITY: Final = 85
"""JPEG quality of image thumbnails: a 160-pixel VOC thumbnail is about 6 KB."""


def check_thumbnail_size(size: int) -> int:
    """``size`` when it is within ``MIN_THUMBNAIL..MAX_THUMBNAIL``; `InvalidParameterError` else."""
    if not MIN_THUMBNAIL <= size <= MAX_THUMBNAIL:
        raise InvalidParameterError(
            "size", f"must be an integer between {MIN_THUMBNAIL} and {MAX_THUMBNAIL}, got {size}"
        )
    return size


def thumbnail_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) of the thumbnail of a ``height`` x ``width`` picture: longest side ``size``.

    A picture that already fits keeps its shape; neither side drops below 1.
    """
    check_thumbnail_size(size)
    longest = max(height, width)
    if longest <= size:
        return height, width
    return max(1, round(height * size / longest)), max(1, round(width * size / longest))


def image_thumbnail(pixels: U8Array, size: int) -> U8Array:
    """The (H, W, 3) uint8 RGB image scaled to fit ``size`` (antialiased bilinear)."""
    height, width = thumbnail_shape(pixels.shape[0], pixels.shape[1], size)
    if (height, width) == pixels.shape[:2]:
        return pixels
    picture = Image.fromarray(np.ascontiguousarray(pixels))
    resized: U8Array = np.asarray(picture.resize((width, height), Image.Resampling.BILINEAR))
    return resized


def label_thumbnail(label: U8Array, size: int) -> U8Array:
    """The (H, W) class indices scaled to fit ``size``: each pixel the nearest source pixel."""
    height, width = thumbnail_shape(label.shape[0], label.shape[1], size)
    if (height, width) == label.shape:
        return label
    rows = _nearest(label.shape[0], height)
    columns = _nearest(label.shape[1], width)
    small: U8Array = label[np.ix_(rows, columns)]
    return small


def _nearest(source: int, target: int) -> npt.NDArray[np.intp]:
    """Source position of the centre of each of ``target`` cells spread over ``source`` pixels."""
    centres = (np.arange(target) + 0.5) * source / target
    return np.minimum(centres.astype(np.intp), source - 1)

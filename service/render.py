"""Pictures for people: crops side by side and the colormap legend, as PNG bytes.

Label pictures themselves come from :mod:`service.labels` (``label_to_png``,
``colorize``); this module composes them with images and class names.
"""

from __future__ import annotations

import io
from functools import cache
from typing import Final

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from service.labels import colorize
from service.source import U8Array
from service.voc import IGNORE_COLOR, IGNORE_INDEX, VOC_CLASSES, VOC_COLORMAP

GAP: Final = 4
"""White pixels between the image and its label in a side-by-side picture."""

_SWATCH: Final = 20
_ROW: Final = 24
_LEGEND_WIDTH: Final = 220
_TEXT_LEFT: Final = _SWATCH + 12


def png_bytes(pixels: U8Array) -> bytes:
    """PNG of an (H, W) grey or (H, W, 3) RGB uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(pixels: U8Array, quality: int) -> bytes:
    """JPEG of an (H, W, 3) RGB uint8 array at ``quality`` (1-95, PIL's scale)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def side_by_side(image: U8Array, label: U8Array) -> U8Array:
    """The RGB image (H, W, 3) and its label in colormap colours, left to right, ``GAP`` apart."""
    if image.shape[:2] != label.shape:
        raise ValueError(f"image {image.shape[:2]} and label {label.shape} differ in size")
    height, width = label.shape
    canvas = np.full((height, 2 * width + GAP, 3), 255, dtype=np.uint8)
    canvas[:, :width] = image
    canvas[:, width + GAP :] = colorize(label)
    return canvas


def crop_png(image: U8Array, label: U8Array) -> bytes:
    """PNG of a crop pair: the image and its coloured label side by side."""
    return png_bytes(side_by_side(image, label))


@cache
def legend_png() -> bytes:
    """PNG legend: one row per class (colour swatch, index, name), then the ignore colour."""
    entries = [
        (color, f"{index:>3}  {name}")
        for index, (name, color) in enumerate(zip(VOC_CLASSES, VOC_COLORMAP, strict=True))
    ]
    entries.append((IGNORE_COLOR, f"{IGNORE_INDEX}  ignore (border)"))
    picture = Image.new("RGB", (_LEGEND_WIDTH, _ROW * len(entries) + 4), "white")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    for row, (color, text) in enumerate(entries):
        top = 2 + row * _ROW
        draw.rectangle((4, top, 4 + _SWATCH, top + _SWATCH), fill=color, outline="black")
        draw.text((4 + _TEXT_LEFT, top + 3), text, fill="black", font=font)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()

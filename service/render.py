"""Pictures for people: crops side by side, the colormap legend, class shares, as PNG bytes.

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
from service.stats import SplitStats
from service.voc import IGNORE_COLOR, IGNORE_INDEX, VOC_CLASSES, VOC_COLORMAP

GAP: Final = 4
"""White pixels between the image and its label in a side-by-side picture."""

_SWATCH: Final = 20
_ROW: Final = 24
_LEGEND_WIDTH: Final = 220
_TEXT_LEFT: Final = _SWATCH + 12
_NAME_WIDTH: Final = 150
_BAR_WIDTH: Final = 300
_SHARES_WIDTH: Final = 4 + _TEXT_LEFT + _NAME_WIDTH + _BAR_WIDTH + 90


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


def class_shares_png(stats: SplitStats) -> bytes:
    """PNG bar chart of a split's class shares: per class its colour, name, share and images.

    A bar's length is the class's share of the split's non-ignore pixels,
    scaled so that the largest share fills the bar width; the first line gives
    the totals, the ignore pixels included.
    """
    shares = stats.shares()
    top = max(shares, default=0.0) or 1.0
    rows = len(stats.classes) + 1
    picture = Image.new("RGB", (_SHARES_WIDTH, _ROW * rows + 4), "white")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    ignored = stats.ignore_pixels / stats.pixels if stats.pixels else 0.0
    header = (
        f"{stats.split}: {stats.images} images, {stats.pixels} pixels, "
        f"{100 * ignored:.1f}% ignore ({IGNORE_INDEX})"
    )
    draw.text((4, 6), header, fill="black", font=font)
    bar_left = 4 + _TEXT_LEFT + _NAME_WIDTH
    for row, (entry, share) in enumerate(zip(stats.classes, shares, strict=True), start=1):
        y = 2 + row * _ROW
        color = tuple(VOC_COLORMAP[entry.index])
        draw.rectangle((4, y, 4 + _SWATCH, y + _SWATCH), fill=color, outline="black")
        draw.text(
            (4 + _TEXT_LEFT, y + 3), f"{entry.index:>3}  {entry.name}", fill="black", font=font
        )
        length = round(_BAR_WIDTH * share / top)
        if length:
            draw.rectangle((bar_left, y + 2, bar_left + length, y + _SWATCH - 2), fill=color)
        draw.rectangle((bar_left, y + 2, bar_left + _BAR_WIDTH, y + _SWATCH - 2), outline="grey")
        label = f"{100 * share:.2f}%  {entry.images} img"
        draw.text((bar_left + _BAR_WIDTH + 6, y + 3), label, fill="black", font=font)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()

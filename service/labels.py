"""Label decoding: VOC label pictures to class indices, and back to pictures.

Real VOC label PNGs are palette images whose pixel value is the class index
(255 = border / difficult). Label pictures may also be RGB (custom datasets,
re-saved files); then the class comes from the colour, as in the chapter's
``voc_colormap2label``. Both decode to the same (H, W) uint8 class indices.
"""

from __future__ import annotations

import io
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt
from PIL import Image

from service.errors import InvalidParameterError
from service.source import U8Array
from service.voc import IGNORE_INDEX, NUM_CLASSES, VOC_COLORMAP, voc_palette

VoidMode = Literal["ignore", "background"]
VOID_MODES: Final[tuple[str, ...]] = get_args(VoidMode)

# Pixel value -> class index for index images: 0..20 and 255 stay, the rest is unknown.
_INDEX_LUT: Final = np.where(np.arange(256) < NUM_CLASSES, np.arange(256), IGNORE_INDEX).astype(
    np.uint8
)


def _pack_rgb(rgb: U8Array) -> npt.NDArray[np.uint32]:
    """One uint32 per pixel, r << 16 | g << 8 | b (the chapter's colormap2label index)."""
    channels = rgb.astype(np.uint32)
    red, green, blue = channels[..., 0], channels[..., 1], channels[..., 2]
    packed: npt.NDArray[np.uint32] = red << np.uint32(16) | green << np.uint32(8) | blue
    return packed


_COLORMAP_KEYS: Final = _pack_rgb(np.array(VOC_COLORMAP, dtype=np.uint8))
_KEY_ORDER: Final = np.argsort(_COLORMAP_KEYS)
_SORTED_KEYS: Final = _COLORMAP_KEYS[_KEY_ORDER]
_SORTED_CLASSES: Final = _KEY_ORDER.astype(np.uint8)
_PALETTE_RGB: Final = np.array(voc_palette(), dtype=np.uint8).reshape(256, 3)


def decode_label(img: Image.Image) -> U8Array:
    """Class indices (H, W) uint8 of a label picture; 255 where the class is unknown.

    'P' and 'L' pictures: the pixel value is the class index (values outside
    0..20 other than 255 become 255). Any other mode is read as RGB and each
    colour looked up in the VOC colormap; colours outside it (the border colour
    224,224,192 included) become 255.
    """
    if img.mode in ("P", "L"):
        indices: U8Array = _INDEX_LUT[np.asarray(img)]
        return indices
    rgb = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    return colors_to_indices(rgb)


def colors_to_indices(rgb: U8Array) -> U8Array:
    """Class index of each (..., 3) colour by the VOC colormap; 255 outside it."""
    keys = _pack_rgb(rgb)
    position = np.searchsorted(_SORTED_KEYS, keys).clip(max=len(_SORTED_KEYS) - 1)
    known = _SORTED_KEYS[position] == keys
    indices: U8Array = np.where(known, _SORTED_CLASSES[position], np.uint8(IGNORE_INDEX))
    return indices.astype(np.uint8, copy=False)


def apply_void(label: U8Array, void: VoidMode, out: U8Array | None = None) -> U8Array:
    """Resolve border/unknown pixels (255): keep them (``ignore``) or make them 0 (``background``).

    ``background`` reproduces the chapter's ``voc_label_indices``, whose lookup
    table is zero for every colour outside the colormap. With ``out`` the result
    is written there; without it, ``ignore`` returns ``label`` itself (no copy).
    """
    if void not in VOID_MODES:
        raise InvalidParameterError("void", f"must be one of {', '.join(VOID_MODES)}, not {void!r}")
    if void == "ignore":
        if out is None:
            return label
        np.copyto(out, label)
        return out
    resolved: U8Array = np.where(label == IGNORE_INDEX, np.uint8(0), label).astype(
        np.uint8, copy=False
    )
    if out is None:
        return resolved
    np.copyto(out, resolved)
    return out


def colorize(label: U8Array) -> U8Array:
    """Colormap colour of each class index, (H, W, 3) uint8; 255 becomes the ignore colour.

    The colours are those of the VOC palette, so this equals the RGB rendering of
    `label_to_png`.
    """
    colors: U8Array = _PALETTE_RGB[label]
    return colors


def label_to_png(label: U8Array) -> bytes:
    """A palette PNG of class indices (H, W) uint8, in the VOC palette (as VOC's own files)."""
    picture = Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8))
    picture.putpalette(voc_palette())
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()

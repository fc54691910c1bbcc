"""Crop and batch parameters: validated, immutable, hashable.

Construction checks what holds for every request (types, ``height >= 1``, the
seed range, ...); the limits that depend on the deployment (largest crop,
largest batch) are checked by :func:`validate_crop` and :func:`validate_batch`,
which the HTTP layer calls with its settings. Every failure is an
:class:`~service.errors.InvalidParameterError` naming the parameter and its range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import get_args

from segserve_client.protocol.params import MAX_CAT_RATIO as MAX_CAT_RATIO
from segserve_client.protocol.params import MAX_SCALE as MAX_SCALE
from segserve_client.protocol.params import SEED_LIMIT as SEED_LIMIT
from segserve_client.protocol.params import CropMode as CropMode
from segserve_client.protocol.params import Dtype as Dtype
from segserve_client.protocol.params import Layout as Layout
from segserve_client.protocol.params import Small as Small
from segserve_client.protocol.params import Void as Void
from segserve_client.protocol.params import default_layout

from service.errors import InvalidParameterError


def _require_int(name: str, value: object, low: int, high: int | None = None) -> None:
    """Raise unless ``value`` is an int (not a bool) in ``[low, high]``."""
    upper = "" if high is None else f" and <= {high}"
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):  # type: ignore[operator]
        raise InvalidParameterError(name, f"must be an integer >= {low}{upper}, got {value!r}")


def _require_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    """Raise unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise InvalidParameterError(name, f"must be one of {', '.join(allowed)}; got {value!r}")


def _require_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidParameterError(name, f"must be true or false, got {value!r}")


def _check_scale(scale: object) -> None:
    """A scale range is two finite numbers with ``0 < lo <= hi <= MAX_SCALE``."""
    detail = f"must be two numbers lo,hi with 0 < lo <= hi <= {MAX_SCALE:g}, got {scale!r}"
    if not isinstance(scale, tuple) or len(scale) != 2:
        raise InvalidParameterError("scale", detail)
    if not all(isinstance(v, float | int) and not isinstance(v, bool) for v in scale):
        raise InvalidParameterError("scale", detail)
    lo, hi = float(scale[0]), float(scale[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo <= hi <= MAX_SCALE):
        raise InvalidParameterError("scale", detail)


def _check_ratio(ratio: object) -> None:
    """``cat_max_ratio`` is a finite number with ``0 < r <= 1``."""
    ok = isinstance(ratio, float | int) and not isinstance(ratio, bool)
    value = float(ratio) if ok else math.nan  # type: ignore[arg-type]
    if not (math.isfinite(value) and 0.0 < value <= MAX_CAT_RATIO):
        raise InvalidParameterError(
            "cat_max_ratio",
            f"must be a number > 0 and <= {MAX_CAT_RATIO:g} ({MAX_CAT_RATIO:g} = off), "
            f"got {ratio!r}",
        )


def _check_mode_combination(crop: CropSpec) -> None:
    """The parameters ``crop_mode`` other than ``random`` leaves no meaning to."""
    if crop.crop_mode != "random" and crop.cat_max_ratio < MAX_CAT_RATIO:
        raise InvalidParameterError(
            "cat_max_ratio",
            f"redraws random windows only; crop_mode={crop.crop_mode} has one fixed window, "
            f"so cat_max_ratio must be 1 (got {crop.cat_max_ratio!r})",
        )
    if crop.crop_mode == "full" and crop.scale is not None:
        raise InvalidParameterError(
            "scale",
            "must be none with crop_mode=full: the whole image is placed on the canvas "
            "as it is stored",
        )


def parse_scale(text: str) -> tuple[float, float]:
    """Parse ``"lo,hi"`` (e.g. ``"0.5,2.0"``) into a validated scale range."""
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise InvalidParameterError(
            "scale", f"must be two numbers lo,hi with 0 < lo <= hi <= {MAX_SCALE:g}, got {text!r}"
        ) from None
    _check_scale((lo, hi))
    return (lo, hi)


@dataclass(frozen=True)
class CropSpec:
    """How one sample becomes a ``height`` x ``width`` crop pair.

    ``small``: ``drop`` keeps only samples at least as large as the crop (the
    chapter's filter), ``pad`` keeps all and pads bottom/right. ``void``:
    ``ignore`` keeps 255 in the label, ``background`` maps it to 0. ``flip``:
    horizontal flip with probability 0.5. ``scale``: random rescale factor
    range ``(lo, hi)`` applied before the crop.

    The training-recipe parameters, each off by default: ``cat_max_ratio``
    (``0 < r <= 1``) redraws the window as mmsegmentation's ``RandomCrop``
    does until no class covers ``r`` or more of its non-ignore pixels;
    ``photometric`` jitters brightness, contrast, saturation and hue of the
    image only; ``crop_mode`` is ``random``, ``center`` (the centred window) or
    ``full`` (the whole image at the top-left of a ``height`` x ``width``
    canvas; only images that fit are usable).
    """

    height: int
    width: int
    small: Small = "drop"
    void: Void = "ignore"
    flip: bool = False
    scale: tuple[float, float] | None = None
    cat_max_ratio: float = MAX_CAT_RATIO
    photometric: bool = False
    crop_mode: CropMode = "random"

    def __post_init__(self) -> None:
        _require_int("height", self.height, 1)
        _require_int("width", self.width, 1)
        _require_choice("small", self.small, get_args(Small))
        _require_choice("void", self.void, get_args(Void))
        _require_bool("flip", self.flip)
        if self.scale is not None:
            _check_scale(self.scale)
            object.__setattr__(self, "scale", (float(self.scale[0]), float(self.scale[1])))
        _check_ratio(self.cat_max_ratio)
        object.__setattr__(self, "cat_max_ratio", float(self.cat_max_ratio))
        _require_bool("photometric", self.photometric)
        _require_choice("crop_mode", self.crop_mode, get_args(CropMode))
        _check_mode_combination(self)

    def describe(self) -> dict[str, str]:
        """The parameters as strings, for the safetensors metadata.

        The recipe parameters appear only when they are not at their default, so
        a request without them gives the bytes it gave before they existed.
        """
        scale = "none" if self.scale is None else f"{self.scale[0]!r},{self.scale[1]!r}"
        described = {
            "height": str(self.height),
            "width": str(self.width),
            "small": self.small,
            "void": self.void,
            "flip": "true" if self.flip else "false",
            "scale": scale,
        }
        if self.cat_max_ratio != MAX_CAT_RATIO:
            described["cat_max_ratio"] = repr(self.cat_max_ratio)
        if self.photometric:
            described["photometric"] = "true"
        if self.crop_mode != "random":
            described["crop_mode"] = self.crop_mode
        return described


@dataclass(frozen=True)
class BatchSpec:
    """One batch request: a crop, how the epoch is ordered and cut, and the output format."""

    crop: CropSpec
    batch_size: int = 64
    seed: int = 0
    epoch: int = 0
    shuffle: bool = True
    drop_last: bool = True
    dtype: Dtype = "uint8"
    layout: Layout | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.crop, CropSpec):
            raise TypeError(f"crop must be a CropSpec, got {type(self.crop).__name__}")
        _require_int("batch_size", self.batch_size, 1)
        check_seed(self.seed)
        _require_int("epoch", self.epoch, 0, SEED_LIMIT - 1)
        _require_bool("shuffle", self.shuffle)
        _require_bool("drop_last", self.drop_last)
        _require_choice("dtype", self.dtype, get_args(Dtype))
        if self.layout is not None:
            _require_choice("layout", self.layout, get_args(Layout))

    @property
    def resolved_layout(self) -> Layout:
        """``layout``, or its default: ``nhwc`` for uint8, ``nchw`` for float32."""
        return resolve_layout(self.dtype, self.layout)

    def describe(self) -> dict[str, str]:
        """The parameters as strings, for the safetensors metadata."""
        return {
            **self.crop.describe(),
            "batch_size": str(self.batch_size),
            "seed": str(self.seed),
            "epoch": str(self.epoch),
            "shuffle": "true" if self.shuffle else "false",
            "drop_last": "true" if self.drop_last else "false",
            "dtype": self.dtype,
            "layout": self.resolved_layout,
        }


def resolve_layout(dtype: Dtype, layout: Layout | None) -> Layout:
    """The image layout: the explicit one, else ``nhwc`` for uint8 and ``nchw`` for float32."""
    _require_choice("dtype", dtype, get_args(Dtype))
    if layout is not None:
        _require_choice("layout", layout, get_args(Layout))
        return layout
    return default_layout(dtype)


def check_seed(seed: object) -> None:
    """Raise unless ``0 <= seed < 2**63``."""
    _require_int("seed", seed, 0, SEED_LIMIT - 1)


def validate_crop(crop: CropSpec, max_crop_pixels: int) -> CropSpec:
    """Check the deployment's limit on ``height * width``; returns ``crop``."""
    pixels = crop.height * crop.width
    if pixels > max_crop_pixels:
        name = "height" if crop.height >= crop.width else "width"
        raise InvalidParameterError(
            name,
            f"height * width must be at most {max_crop_pixels}, "
            f"got {crop.height} x {crop.width} = {pixels}",
        )
    return crop


def check_batch_size(batch_size: int, max_batch_size: int) -> int:
    """Raise unless ``1 <= batch_size <= max_batch_size`` (worded as its OpenAPI range is)."""
    if not 1 <= batch_size <= max_batch_size:
        raise InvalidParameterError(
            "batch_size", f"must be an integer between 1 and {max_batch_size}, got {batch_size}"
        )
    return batch_size


def validate_batch(spec: BatchSpec, max_batch_size: int, max_crop_pixels: int) -> BatchSpec:
    """Check the deployment's limits on the batch size and the crop size; returns ``spec``."""
    check_batch_size(spec.batch_size, max_batch_size)
    validate_crop(spec.crop, max_crop_pixels)
    return spec

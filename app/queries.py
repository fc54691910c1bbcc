"""Query parameters shared by crops, batches and epoch streams, each with its range.

The OpenAPI document (and so the 422 messages of :mod:`app.validation`) takes its
ranges from these declarations; the deployment's limits (batch size, crop
pixels) come from the settings alone: :mod:`service.params` checks them and
:func:`document_limits` writes them into the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final

from fastapi import Depends, Query
from segserve_client.protocol.encoding import DEFAULT_QUALITY, MAX_QUALITY, MIN_QUALITY

from app.deps import SettingsDep
from service.config import Settings
from service.errors import InvalidParameterError
from service.params import (
    MAX_CAT_RATIO,
    MAX_SCALE,
    SEED_LIMIT,
    BatchSpec,
    CropMode,
    CropSpec,
    Dtype,
    Layout,
    Small,
    Void,
    check_batch_size,
    parse_scale,
    validate_batch,
    validate_crop,
)
from service.transport import ENCODINGS, Encoding, Transport, checked_transport

MAX_SIDE: Final = 4096
MAX_SEED: Final = SEED_LIMIT - 1

Height = Annotated[
    int, Query(ge=1, le=MAX_SIDE, description="Crop height in pixels.", examples=[320])
]
Width = Annotated[
    int, Query(ge=1, le=MAX_SIDE, description="Crop width in pixels.", examples=[480])
]
SmallQuery = Annotated[
    Small,
    Query(
        description="Samples smaller than the crop: `drop` skips them (the chapter's filter), "
        "`pad` keeps them, padding the image with 0 and the label with 255."
    ),
]
VoidQuery = Annotated[
    Void,
    Query(
        description="Border/unknown label pixels: `ignore` keeps 255, "
        "`background` makes them 0 (the chapter's `voc_label_indices`)."
    ),
]
FlipQuery = Annotated[bool, Query(description="Flip each crop horizontally with probability 0.5.")]
ScaleQuery = Annotated[
    str | None,
    Query(
        description=f"Random rescale before the crop: `lo,hi` with 0 < lo <= hi <= {MAX_SCALE:g} "
        "(bilinear image, nearest label). Default: none.",
        examples=["0.5,2.0"],
        max_length=64,
    ),
]
CatMaxRatioQuery = Annotated[
    float,
    Query(
        gt=0,
        le=MAX_CAT_RATIO,
        description="As mmsegmentation's RandomCrop(cat_max_ratio): redraw the window, up to "
        "10 times, until no class covers this share or more of its non-ignore pixels (the "
        "last draw is kept when none qualifies). 0 < r <= 1; 1 (default) = off. "
        "Only with crop_mode=random.",
        examples=[0.75],
    ),
]
PhotometricQuery = Annotated[
    bool,
    Query(
        description="mmsegmentation's PhotoMetricDistortion of the image (never the label): "
        "brightness +-32, contrast and saturation x0.5..1.5, hue +-18 (of 180), each with "
        "probability 0.5, contrast before or after the HSV steps at random. Window, flip, "
        "scale, label, index and rect stay those of the request without it."
    ),
]
CropModeQuery = Annotated[
    CropMode,
    Query(
        description="`random` window; `center`: top (H - height) // 2, left (W - width) // 2; "
        "`full`: the whole image at the top-left of a height x width canvas (image padded "
        "with 0, label with 255; only images that fit are usable; no scale)."
    ),
]
SeedQuery = Annotated[
    int,
    Query(ge=0, le=MAX_SEED, description="Seed of the epoch order and of every crop."),
]
EpochQuery = Annotated[
    int, Query(ge=0, le=MAX_SEED, description="Epoch number (reshuffles the order).")
]
DtypeQuery = Annotated[
    Dtype,
    Query(description="`uint8` pixels, or `float32` normalised as (x/255 - mean)/std."),
]
LayoutQuery = Annotated[
    Layout | None,
    Query(description="Image layout; default `nhwc` for uint8, `nchw` for float32."),
]
# Its maximum is the server's SEGSERVE_MAX_BATCH_SIZE: checked by validate_batch,
# written into the OpenAPI document by document_limits.
BatchSizeQuery = Annotated[
    int,
    Query(
        ge=1, description="Samples per batch, at most the server's limit (maximum).", examples=[64]
    ),
]


def batch_size_query(settings: SettingsDep, batch_size: BatchSizeQuery = 64) -> int:
    """``batch_size``, checked against the deployment's limit."""
    return check_batch_size(batch_size, settings.max_batch_size)


BatchSize = Annotated[int, Depends(batch_size_query)]
ShuffleQuery = Annotated[bool, Query(description="Shuffle the epoch's order by (seed, epoch).")]
DropLastQuery = Annotated[
    bool,
    Query(description="Drop the last incomplete batch (the chapter's last_batch='discard')."),
]
EncodingQuery = Annotated[
    Encoding,
    Query(
        description="How image and label travel (safetensors only): `raw` arrays; `lossless` "
        "(PNG Sub filter + zstd image, zstd label; decodes byte-identical to raw); "
        "`jpeg` (JPEG 4:4:4 image at `quality`, zstd label). Encodings carry uint8 NHWC "
        "images only. See docs/API.md, Encodings.",
        examples=list(ENCODINGS),
    ),
]
QualityQuery = Annotated[
    int | None,
    Query(
        ge=MIN_QUALITY,
        le=MAX_QUALITY,
        description=f"JPEG quality {MIN_QUALITY}-{MAX_QUALITY} (default {DEFAULT_QUALITY}); "
        "only with `encoding=jpeg`.",
        examples=[DEFAULT_QUALITY],
    ),
]


def crop_spec(
    settings: SettingsDep,
    height: Height,
    width: Width,
    small: SmallQuery = "drop",
    void: VoidQuery = "ignore",
    flip: FlipQuery = False,
    scale: ScaleQuery = None,
    cat_max_ratio: CatMaxRatioQuery = MAX_CAT_RATIO,
    photometric: PhotometricQuery = False,
    crop_mode: CropModeQuery = "random",
) -> CropSpec:
    """The crop the query asks for, checked against the deployment's limits."""
    scale_range = None if scale is None else parse_scale(scale)
    crop = CropSpec(
        height,
        width,
        small=small,
        void=void,
        flip=flip,
        scale=scale_range,
        cat_max_ratio=cat_max_ratio,
        photometric=photometric,
        crop_mode=crop_mode,
    )
    return validate_crop(crop, settings.max_crop_pixels)


CropSpecDep = Annotated[CropSpec, Depends(crop_spec)]


def check_batch_bytes(batch_size: int, crop: CropSpec, dtype: Dtype, limit: int) -> None:
    """422 when ``batch_size`` crops of this size would take more than ``limit`` bytes."""
    pixel_bytes = 3 * (4 if dtype == "float32" else 1) + 1  # image channels + label
    nbytes = batch_size * crop.height * crop.width * pixel_bytes
    if nbytes > limit:
        raise InvalidParameterError(
            "batch_size",
            f"{batch_size} crops of {crop.height} x {crop.width} ({dtype}) take "
            f"{nbytes / 2**20:.0f} MiB, above the limit of {limit / 2**20:.0f} MiB; "
            "lower batch_size or the crop size",
        )


def batch_spec(
    settings: SettingsDep,
    crop: CropSpecDep,
    batch_size: BatchSize,
    seed: SeedQuery = 0,
    shuffle: ShuffleQuery = True,
    drop_last: DropLastQuery = True,
    dtype: DtypeQuery = "uint8",
    layout: LayoutQuery = None,
) -> BatchSpec:
    """The batch parameters of the query (epoch 0; the batch route sets its own)."""
    spec = BatchSpec(crop, batch_size, seed, 0, shuffle, drop_last, dtype, layout)
    validate_batch(spec, settings.max_batch_size, settings.max_crop_pixels)
    check_batch_bytes(batch_size, crop, dtype, settings.max_batch_bytes)
    return spec


BatchSpecDep = Annotated[BatchSpec, Depends(batch_spec)]


def batch_transport(
    spec: BatchSpecDep, encoding: EncodingQuery = "raw", quality: QualityQuery = None
) -> Transport:
    """The transport encoding of a batch or stream; 422 for a combination not served."""
    return checked_transport(encoding, quality, spec.dtype, spec.layout)


TransportDep = Annotated[Transport, Depends(batch_transport)]


# Query parameters whose maximum is a setting, and that setting.
SETTING_MAXIMA: Final[Mapping[str, Callable[[Settings], int]]] = {
    "batch_size": lambda settings: settings.max_batch_size,
}


def document_limits(openapi: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Write the settings' limits into the parameters' schemas (``maximum``) of ``openapi``."""
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                maximum = SETTING_MAXIMA.get(parameter.get("name", ""))
                if maximum is not None and parameter.get("in") == "query":
                    parameter.setdefault("schema", {})["maximum"] = maximum(settings)
    return openapi

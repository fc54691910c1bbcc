"""Splits and their samples: sizes, the stored JPEG, decoded images and labels."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from segserve_client.protocol.wire import encode
from starlette.responses import FileResponse

from app.bodies import (
    JPEG,
    JSON,
    NPY,
    PNG,
    SAFETENSORS,
    cache_headers,
    check_json_size,
    entity_tag,
    json_bytes,
    not_modified,
    npy_chunks,
    npy_response,
    ok_response,
    rendered_response,
    safetensors_response,
)
from app.deps import DatasetDep, ServicesDep, SplitDep
from app.models import LabelArray, SampleInfo, SplitInfo
from app.problems import problem_responses
from app.queries import MAX_SIDE, BatchSize, CropModeQuery, DropLastQuery, SmallQuery, VoidQuery
from service.errors import DatasetError, NoUsableSampleError
from service.labels import apply_void, label_to_png
from service.params import CropSpec
from service.render import jpeg_bytes, png_bytes
from service.sampling import num_batches, usable_indices
from service.source import U8Array
from service.thumbnail import (
    MAX_THUMBNAIL,
    MIN_THUMBNAIL,
    THUMBNAIL_QUALITY,
    image_thumbnail,
    label_thumbnail,
)

router = APIRouter(prefix="/v1/splits", tags=["samples"])

_ERRORS: Final = problem_responses(401, 404, 422, 503)

SampleIndex = Annotated[
    int, Path(ge=0, description="Sample index within the split (0-based, split file order).")
]
Side = Annotated[
    int | None, Query(ge=1, le=MAX_SIDE, description="Crop side for `usable`; default: none.")
]
ThumbnailSize = Annotated[
    int | None,
    Query(
        ge=MIN_THUMBNAIL,
        le=MAX_THUMBNAIL,
        description="Thumbnail: scaled on the server to fit a `size` x `size` square "
        "(aspect kept, never enlarged); default: full size.",
        examples=[160],
    ),
]
_IMAGE_TYPES: Final = {"jpeg": JPEG, "npy": NPY, "png": PNG}


@router.get("/{split}", summary="A split", responses=_ERRORS)
def split_info(
    split: SplitDep,
    batch_size: BatchSize,
    height: Side = None,
    width: Side = None,
    small: SmallQuery = "drop",
    crop_mode: CropModeQuery = "random",
    drop_last: DropLastQuery = True,
) -> SplitInfo:
    """Size; samples usable for a `height` x `width` crop (or canvas, under
    `crop_mode=full`); batches per epoch of `batch_size`."""
    crop = CropSpec(height or 1, width or 1, small=small, crop_mode=crop_mode)
    try:
        usable = len(usable_indices(split, crop))
    except NoUsableSampleError:
        usable = 0
    batches = num_batches(usable, batch_size, drop_last)
    return SplitInfo(name=split.name, size=len(split), usable=usable, batches=batches)


@router.get("/{split}/samples/{index}", summary="A sample", responses=_ERRORS)
def sample_info(split: SplitDep, index: SampleIndex) -> SampleInfo:
    """The sample's id (file name stem) and image size."""
    height, width = split.label(index).shape
    return SampleInfo(index=index, id=split.ids[index], height=height, width=width)


@router.get(
    "/{split}/samples/{index}/image",
    summary="A sample's image",
    response_class=Response,
    responses={**ok_response("The image.", (JPEG, NPY, PNG)), **_ERRORS},
)
async def image(
    request: Request,
    services: ServicesDep,
    dataset: DatasetDep,
    split: SplitDep,
    index: SampleIndex,
    format: Annotated[
        Literal["jpeg", "npy", "png"],
        Query(
            description="`jpeg`: the stored file (with `size`, a new JPEG of the thumbnail); "
            "`npy`: (H, W, 3) uint8 RGB; `png`."
        ),
    ] = "jpeg",
    size: ThumbnailSize = None,
) -> Response:
    """The stored JPEG as it is on disk, or the decoded RGB pixels as `.npy` or PNG;
    with `size`, a thumbnail scaled on the server."""
    pixels = split.image(index)
    etag = entity_tag(dataset.fingerprint, "image", split.name, index, format, size)
    if (cached := not_modified(request, etag)) is not None:
        return cached
    headers = cache_headers(etag)
    if size is not None:
        media_type = _IMAGE_TYPES[format]
        render = _image_thumbnail_body
        return await rendered_response(
            services.slots, media_type, headers, render, pixels, size, format
        )
    if format == "npy":
        return npy_response(pixels, headers)
    if format == "png":
        return await rendered_response(services.slots, PNG, headers, png_bytes, pixels)
    path = split.image_path(index)
    if not path.is_file():
        raise DatasetError(f"the image file of sample {index} of split {split.name!r} is gone")
    return FileResponse(path, media_type=JPEG, headers=headers)


@router.get(
    "/{split}/samples/{index}/label",
    summary="A sample's label",
    response_class=Response,
    responses={**ok_response("The label.", (NPY, PNG, SAFETENSORS), LabelArray), **_ERRORS},
)
async def label(
    request: Request,
    services: ServicesDep,
    dataset: DatasetDep,
    split: SplitDep,
    index: SampleIndex,
    void: VoidQuery = "ignore",
    format: Annotated[
        Literal["npy", "json", "png", "safetensors"],
        Query(
            description="`npy`: (H, W) uint8 class indices; `json`: {height, width, data}; "
            "`png`: palette PNG in the colormap; `safetensors`: tensor `label`."
        ),
    ] = "npy",
    size: ThumbnailSize = None,
) -> Response:
    """Class indices of every pixel (255 = border unless `void=background`)."""
    stored = split.label(index)
    etag = entity_tag(dataset.fingerprint, "label", split.name, index, void, format, size)
    if (cached := not_modified(request, etag)) is not None:
        return cached
    if size is not None:
        stored = label_thumbnail(stored, size)  # nearest pixels: at most size x size of them
    headers, indices = cache_headers(etag), apply_void(stored, void)
    if format == "npy":
        return npy_response(indices, headers)
    if format == "safetensors":
        metadata = {"split": split.name, "index": str(index), "id": split.ids[index], "void": void}
        return safetensors_response(encode({"label": indices}, metadata), headers)
    if format == "png":
        return await rendered_response(services.slots, PNG, headers, label_to_png, indices)
    check_json_size(indices.size, services.settings.max_json_elements, "label")
    return await rendered_response(services.slots, JSON, headers, _label_json, indices)


def _image_thumbnail_body(pixels: U8Array, size: int, format: str) -> bytes:
    """The image scaled to fit ``size``, as a JPEG, PNG or ``.npy`` body."""
    small = image_thumbnail(pixels, size)
    if format == "jpeg":
        return jpeg_bytes(small, THUMBNAIL_QUALITY)
    if format == "png":
        return png_bytes(small)
    return b"".join(npy_chunks(small))


def _label_json(indices: U8Array) -> bytes:
    height, width = indices.shape
    return json_bytes({"height": height, "width": width, "data": indices.tolist()})

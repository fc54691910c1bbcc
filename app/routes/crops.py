"""Single random crop pairs: for looking at the data, and for trainers that want one at a time."""

from __future__ import annotations

import secrets
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Query, Request, Response

from app.bodies import (
    JSON,
    NO_STORE,
    PNG,
    SAFETENSORS,
    cache_headers,
    check_json_size,
    entity_tag,
    json_bytes,
    not_modified,
    ok_response,
    rendered_response,
    safetensors_response,
)
from app.deps import DatasetDep, ServicesDep, SplitDep
from app.models import CropArrays
from app.problems import problem_responses
from app.queries import (
    MAX_SEED,
    CropSpecDep,
    DtypeQuery,
    EncodingQuery,
    EpochQuery,
    LayoutQuery,
    QualityQuery,
)
from service.batch import Batch, encode_batch, make_crop
from service.errors import InvalidParameterError
from service.render import crop_png
from service.transport import Transport, checked_transport, transport_tag

router = APIRouter(prefix="/v1/splits", tags=["crops"])

CropFormat = Literal["safetensors", "json", "png"]
_SEED_HEADER: Final = "X-Seed"


@router.get(
    "/{split}/crop",
    summary="One random crop pair",
    response_class=Response,
    responses={
        **ok_response("The crop pair.", (SAFETENSORS, PNG), CropArrays),
        **problem_responses(401, 404, 422, 503),
    },
)
async def crop(
    request: Request,
    services: ServicesDep,
    dataset: DatasetDep,
    split: SplitDep,
    spec: CropSpecDep,
    index: Annotated[
        int | None, Query(ge=0, description="Sample index; default: a usable one picked by seed.")
    ] = None,
    seed: Annotated[
        int | None,
        Query(ge=0, le=MAX_SEED, description="Seed; default: random, returned in `X-Seed`."),
    ] = None,
    epoch: EpochQuery = 0,
    dtype: DtypeQuery = "uint8",
    layout: LayoutQuery = None,
    format: Annotated[
        CropFormat,
        Query(
            description="`safetensors` (tensors image, label, index, rect with N = 1), "
            "`json`, or `png`: the image and its coloured label side by side (uint8)."
        ),
    ] = "safetensors",
    encoding: EncodingQuery = "raw",
    quality: QualityQuery = None,
) -> Response:
    """A `height` x `width` crop of the image and the label at the same place."""
    transport = _crop_transport(encoding, quality, dtype, layout, format)
    chosen = secrets.randbelow(MAX_SEED + 1) if seed is None else seed
    headers = {_SEED_HEADER: str(chosen), "Cache-Control": NO_STORE}
    if seed is not None:
        parts = ("crop", split.name, spec.describe(), index, seed, epoch, dtype, layout, format)
        etag = entity_tag(dataset.fingerprint, *parts, *transport_tag(transport))
        if (cached := not_modified(request, etag)) is not None:
            return cached
        headers.update(cache_headers(etag))
    if format == "json":
        check_json_size(4 * spec.height * spec.width, services.settings.max_json_elements, "crop")
    if format == "png":
        dtype, layout = "uint8", "nhwc"
    batch = await services.slots.run(make_crop, split, spec, chosen, epoch, index, dtype, layout)
    services.metrics.samples.labels(split.name).inc()
    services.metrics.batches.labels(split.name).inc()
    return await _crop_response(services, batch, format, transport, chosen, headers)


def _crop_transport(
    encoding: str, quality: int | None, dtype: str, layout: str | None, format: CropFormat
) -> Transport:
    """The crop's transport encoding; encodings apply to safetensors bodies only."""
    if encoding != "raw" and format != "safetensors":
        raise InvalidParameterError(
            "format",
            f"encoding={encoding} applies to format=safetensors only (got format={format})",
        )
    return checked_transport(encoding, quality, dtype, layout)


async def _crop_response(
    services: ServicesDep,
    batch: Batch,
    format: CropFormat,
    transport: Transport,
    seed: int,
    headers: dict[str, str],
) -> Response:
    """The crop pair in the requested format (encoded in a worker thread when that costs)."""
    if format == "safetensors" and transport.encoding == "raw":
        return safetensors_response(encode_batch(batch), headers)
    if format == "safetensors":
        encoded = await services.slots.run(encode_batch, batch, transport)
        return safetensors_response(encoded, headers)
    if format == "png":
        image, label = batch.image[0], batch.label[0]
        return await rendered_response(services.slots, PNG, headers, crop_png, image, label)
    return await rendered_response(services.slots, JSON, headers, _crop_json, batch, seed)


def _crop_json(batch: Batch, seed: int) -> bytes:
    return json_bytes(
        {
            "index": int(batch.index[0]),
            "rect": batch.rect[0].tolist(),
            "seed": seed,
            "image": batch.image[0].tolist(),
            "label": batch.label[0].tolist(),
        }
    )

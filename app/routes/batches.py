"""Training batches: one batch of an epoch, or a stream of an epoch's batches."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from segserve_client.protocol.wire import Encoded
from starlette.concurrency import run_in_threadpool

from app.bodies import (
    FRAMES,
    SAFETENSORS,
    binary_content,
    cache_headers,
    entity_tag,
    not_modified,
    ok_response,
    safetensors_response,
)
from app.deps import DatasetDep, ServicesDep, SplitDep
from app.metrics import Metrics
from app.problems import problem_responses
from app.queries import MAX_SEED, BatchSpecDep, EpochQuery, TransportDep
from app.streams import FrameStreamResponse
from service.batch import encode_batch, make_batch, raw_batch_nbytes
from service.dataset import Split
from service.params import BatchSpec
from service.sampling import num_batches, usable_indices
from service.transport import Transport, transport_tag

router = APIRouter(prefix="/v1/splits", tags=["batches"])

_ERRORS: Final = problem_responses(401, 404, 422, 503)
_FORMAT: Final = Query(description="Only `safetensors`.")

BatchNumber = Annotated[int, Path(ge=0, description="Batch number within the epoch (0-based).")]
EpochNumber = Annotated[int, Path(ge=0, le=MAX_SEED, description="Epoch number.")]


def batch_builder(
    split: Split, spec: BatchSpec, transport: Transport, metrics: Metrics
) -> Callable[[int], Encoded]:
    """A function from batch number to encoded batch that also counts what it built."""

    def build(batch: int) -> Encoded:
        built = make_batch(split, spec, batch)
        metrics.batches.labels(split.name).inc()
        metrics.samples.labels(split.name).inc(len(built.index))
        return encode_batch(built, transport)

    return build


@router.get(
    "/{split}/batches/{batch}",
    summary="One batch of an epoch",
    response_class=Response,
    responses={**ok_response("The batch (safetensors).", (SAFETENSORS,)), **_ERRORS},
)
async def one_batch(
    request: Request,
    services: ServicesDep,
    dataset: DatasetDep,
    split: SplitDep,
    spec: BatchSpecDep,
    transport: TransportDep,
    batch: BatchNumber,
    epoch: EpochQuery = 0,
    format: Annotated[Literal["safetensors"], _FORMAT] = "safetensors",
) -> Response:
    """Batch `batch` of epoch `epoch`: tensors image, label, index, rect; same query, same bytes."""
    spec = dataclasses.replace(spec, epoch=epoch)
    tag = ("batch", split.name, batch, spec.describe(), *transport_tag(transport))
    etag = entity_tag(dataset.fingerprint, *tag)
    if (cached := not_modified(request, etag)) is not None:
        return cached
    build = batch_builder(split, spec, transport, services.metrics)
    encoded = await services.slots.run(build, batch)
    return safetensors_response(encoded, cache_headers(etag))


@router.get(
    "/{split}/epochs/{epoch}",
    summary="A stream of an epoch's batches",
    response_class=Response,
    responses={200: {"description": "Frames", "content": binary_content(FRAMES)}, **_ERRORS},
)
async def epoch_stream(
    services: ServicesDep,
    split: SplitDep,
    spec: BatchSpecDep,
    transport: TransportDep,
    epoch: EpochNumber,
    start: Annotated[int, Query(ge=0, description="First batch number.")] = 0,
    stop: Annotated[
        int | None, Query(ge=0, description="Batch number to stop before; default: the end.")
    ] = None,
    step: Annotated[int, Query(ge=1, description="Take every step-th batch.")] = 1,
    format: Annotated[Literal["safetensors"], _FORMAT] = "safetensors",
) -> Response:
    """Batches `start`, `start + step`, ... before `stop` of the epoch, as frames: an 8-byte
    little-endian length, then one batch in safetensors. Sent as they are built.

    A `raw` stream has a `Content-Length` (every frame's length follows from
    the query); an encoded one is chunked. When the server shuts down (SIGTERM)
    the stream ends after a whole frame, short of its `Content-Length` or
    without the chunked body's last chunk, so the client sees an incomplete
    response and resumes from the next batch elsewhere."""
    spec = dataclasses.replace(spec, epoch=epoch)
    usable = len(usable_indices(split, spec.crop))
    selected = range(num_batches(usable, spec.batch_size, spec.drop_last))[start:stop:step]
    headers = {"X-Batch-Count": str(len(selected))}
    sizes = None
    if transport.encoding == "raw":
        sizes = await run_in_threadpool(_raw_sizes, split, spec, selected)
    await services.slots.acquire()  # admitted like one batch; the response owns this slot
    return FrameStreamResponse(
        batch_builder(split, spec, transport, services.metrics),
        selected,
        slots=services.slots,
        prefetch=services.settings.stream_prefetch,
        metrics=services.metrics,
        headers=headers,
        frame_sizes=sizes,
    )


def _raw_sizes(split: Split, spec: BatchSpec, batches: range) -> list[int]:
    return [raw_batch_nbytes(split, spec, batch) for batch in batches]

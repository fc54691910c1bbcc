"""Class statistics of a split, and its samples filtered by the classes they contain."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Query, Request, Response

from app.bodies import PNG, binary_content, cache_headers, entity_tag, not_modified
from app.deps import DatasetDep, ServicesDep, SplitDep
from app.models import (
    ClassCount,
    PixelCount,
    SampleClasses,
    SampleList,
    SplitStatistics,
)
from app.problems import problem_responses
from service.dataset import Split
from service.render import class_shares_png
from service.stats import IGNORE_COLUMN, parse_classes, samples_with
from service.voc import NUM_CLASSES

router = APIRouter(prefix="/v1/splits", tags=["statistics"])

_ERRORS: Final = problem_responses(401, 404, 422, 503)
MAX_PAGE: Final = 1000


@router.get(
    "/{split}/stats",
    summary="Class statistics of a split",
    response_model=SplitStatistics,
    responses={
        200: {
            "description": "The statistics (JSON), or with `format=png` a picture of the "
            "class shares in the class colours.",
            "content": binary_content(PNG),
        },
        **_ERRORS,
    },
)
async def split_statistics(
    request: Request,
    services: ServicesDep,
    dataset: DatasetDep,
    split: SplitDep,
    format: Annotated[
        Literal["json", "png"],
        Query(description="`json`, or `png`: a bar per class, its share of the labelled pixels."),
    ] = "json",
) -> SplitStatistics | Response:
    """Exact pixel and image counts per class over the whole labels, and each class's
    median-frequency-balancing weight (counted once per dataset content, with the cache)."""
    stats = split.stats()
    if format == "json":
        return SplitStatistics(
            split=stats.split,
            images=stats.images,
            pixels=stats.pixels,
            ignore_pixels=stats.ignore_pixels,
            classes=[ClassCount(**vars(entry)) for entry in stats.classes],
        )
    etag = entity_tag(dataset.fingerprint, "stats", split.name, format)
    if (cached := not_modified(request, etag)) is not None:
        return cached
    picture = await services.slots.run(class_shares_png, stats)
    return Response(picture, media_type=PNG, headers=cache_headers(etag))


@router.get("/{split}/samples", summary="Samples that contain given classes", responses=_ERRORS)
def samples_by_class(
    split: SplitDep,
    classes: Annotated[
        str | None,
        Query(
            description="Comma-separated class indices (0..20, or 255 for the ignore value); "
            "a sample is listed when its label contains every one. Default: all samples.",
            examples=["15,12"],
            max_length=256,
        ),
    ] = None,
    offset: Annotated[int, Query(ge=0, description="First match to return.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Matches to return at most.")] = 100,
) -> SampleList:
    """A page of the samples whose label contains every class of `classes`, in split order,
    each with the classes it contains and their pixels."""
    wanted = parse_classes(classes)
    matches = samples_with(split.class_pixels, wanted)
    page = matches[offset : offset + limit].tolist()
    return SampleList(
        split=split.name,
        classes=list(wanted),
        total=len(matches),
        offset=offset,
        limit=limit,
        samples=[_sample_classes(split, index) for index in page],
    )


def _sample_classes(split: Split, index: int) -> SampleClasses:
    row = split.class_pixels[index]
    present = [PixelCount(index=c, pixels=int(row[c])) for c in range(NUM_CLASSES) if row[c]]
    return SampleClasses(
        index=index,
        id=split.ids[index],
        height=int(split.heights[index]),
        width=int(split.widths[index]),
        classes=present,
        ignore_pixels=int(row[IGNORE_COLUMN]),
    )

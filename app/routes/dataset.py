"""The dataset as a whole: what it holds, its classes and their colours."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from app.bodies import PNG, binary_content, cache_headers, content_tag, not_modified
from app.deps import DatasetDep
from app.models import ClassInfo, Colormap, DatasetInfo, ExcludedFile, SplitSize
from app.problems import problem_responses
from service.render import legend_png
from service.voc import (
    IGNORE_COLOR,
    IGNORE_INDEX,
    NUM_CLASSES,
    RGB_MEAN,
    RGB_STD,
    VOC_CLASSES,
    VOC_COLORMAP,
)

router = APIRouter(prefix="/v1", tags=["dataset"])


@router.get("/dataset", summary="The dataset", responses=problem_responses(401, 503))
def dataset_info(dataset: DatasetDep) -> DatasetInfo:
    """Name, classes, normalisation, splits with their sizes, and the samples that were skipped."""
    return DatasetInfo(
        name=dataset.name,
        num_classes=NUM_CLASSES,
        ignore_index=IGNORE_INDEX,
        mean=list(RGB_MEAN),
        std=list(RGB_STD),
        splits=[SplitSize(name=n, size=len(s)) for n, s in sorted(dataset.splits.items())],
        excluded_count=len(dataset.excluded),
        excluded=[ExcludedFile(name=e.name, reason=e.reason) for e in dataset.excluded],
    )


@router.get("/classes", summary="The 21 classes", responses=problem_responses(401))
def classes() -> list[ClassInfo]:
    """Index, name and colormap colour of each class (the chapter's VOC_CLASSES, VOC_COLORMAP)."""
    return [
        ClassInfo(index=i, name=name, color=list(color))
        for i, (name, color) in enumerate(zip(VOC_CLASSES, VOC_COLORMAP, strict=True))
    ]


@router.get(
    "/colormap",
    summary="The colormap (JSON or a legend picture)",
    response_model=Colormap,
    responses={
        200: {"content": binary_content(PNG), "description": "The colormap, or its legend."},
        **problem_responses(401, 422),
    },
)
def colormap(
    request: Request,
    format: Annotated[
        Literal["json", "png"],
        Query(description="`json`, or `png`: a legend with each colour and class name."),
    ] = "json",
) -> Colormap | Response:
    """The colour of every class and of the ignore value; `format=png` draws a legend."""
    if format == "json":
        return Colormap(
            colors=[list(c) for c in VOC_COLORMAP],
            ignore_index=IGNORE_INDEX,
            ignore_color=list(IGNORE_COLOR),
        )
    picture = legend_png()
    etag = content_tag(picture)
    cached = not_modified(request, etag)
    return cached or Response(picture, media_type=PNG, headers=cache_headers(etag))

"""Dependencies: services, dataset, split, bearer token, known query parameters.

All of them are ``async``: none blocks, and FastAPI runs a plain ``def``
dependency in its thread pool, a hop to a worker thread (the first one also
starts that pool) for every dependency of every request, ``/readyz`` included.
"""

from __future__ import annotations

import hmac
from typing import Annotated, cast

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.metrics import Metrics
from app.problems import UnauthorizedError
from app.state import Services
from app.validation import unknown_query_parameters
from service.config import Settings
from service.dataset import Dataset, Split
from service.errors import InvalidParameterError


async def get_services(request: Request) -> Services:
    """The :class:`Services` of the app serving this request."""
    return cast(Services, request.app.state.services)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    """The app's settings."""
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_metrics(services: ServicesDep) -> Metrics:
    """The app's metrics."""
    return services.metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def get_dataset(services: ServicesDep) -> Dataset:
    """The dataset; 503 (``DatasetNotReadyError``) while it loads or when loading failed."""
    return services.loader.dataset()


DatasetDep = Annotated[Dataset, Depends(get_dataset)]

SplitName = Annotated[
    str,
    Path(
        description="A split: the stem of a file in `ImageSets/Segmentation/` "
        "(`train`, `val`, `trainval` on VOC2012). Unknown names give 404.",
        examples=["train"],
    ),
]


async def get_split(dataset: DatasetDep, split: SplitName) -> Split:
    """The split named in the path; 404 (``NotFoundError``) when there is none by that name."""
    return dataset.split(split)


SplitDep = Annotated[Split, Depends(get_split)]

_bearer = HTTPBearer(
    auto_error=False,
    description="Needed on /v1 only when the server sets SEGSERVE_API_TOKEN.",
)


async def require_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 (``UnauthorizedError``) unless the bearer token matches the configured one, if any."""
    if settings.api_token is None:
        return
    if credentials is None:
        raise UnauthorizedError("authorization: missing bearer token (Authorization: Bearer ...)")
    expected = settings.api_token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise UnauthorizedError("authorization: wrong bearer token")


async def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the endpoint does not take (a typo would otherwise be ignored)."""
    unknown, known = unknown_query_parameters(request)
    if unknown:
        takes = ", ".join(known) or "no query parameters"
        raise InvalidParameterError(unknown[0], f"unknown parameter; this endpoint takes: {takes}")

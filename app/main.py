"""The app factory: ``create_app()`` reads the environment, tests call the level below."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi_offline import FastAPIOffline

from app.browser.pages import install_browser
from app.deps import reject_unknown_query, require_token
from app.drain import drain_on_sigterm
from app.metrics import MetricsMiddleware
from app.problems import drop_status, install_problem_handlers, move_problems_to_problem_json
from app.queries import document_limits
from app.routes import batches, crops, dataset, health, samples, stats
from app.state import DatasetLoader, Services
from app.worker import WorkerHeaderMiddleware
from service.config import Settings

DESCRIPTION = """
Serves the Pascal VOC2012 semantic-segmentation data set (as read in the d2l
chapter "Semantic Segmentation and Data Sets") to remote trainers: labels as
class indices, random crop pairs, and whole deterministic batches in
safetensors (`application/vnd.safetensors`; `.npy` is `application/x-npy`).

Errors are RFC 9457 `application/problem+json`. When the server has a token,
every `/v1` endpoint wants `Authorization: Bearer <token>`.
"""

TAGS = [
    {"name": "dataset", "description": "The data set, its classes and colours."},
    {"name": "samples", "description": "Splits and single samples: images and labels."},
    {"name": "crops", "description": "Random crop pairs, one at a time."},
    {"name": "batches", "description": "Deterministic training batches and epoch streams."},
    {"name": "statistics", "description": "Class counts, weights and per-image class presence."},
    {"name": "operations", "description": "Liveness, readiness and metrics."},
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start loading the dataset in the background (requests are served meanwhile); drain on
    SIGTERM (:mod:`app.drain`)."""
    services: Services = app.state.services
    services.loader.start()
    with drain_on_sigterm(services.slots, services.settings.drain_seconds):
        yield


def create_app() -> FastAPI:
    """The app, configured from ``SEGSERVE_*`` environment variables (uvicorn's factory)."""
    return create_app_with_config(Settings())


def create_app_with_config(settings: Settings) -> FastAPI:
    """The app for ``settings``; the dataset is loaded when the app starts (its lifespan)."""
    # Swagger UI and ReDoc from assets shipped in the package, not a CDN: /docs
    # works on machines and clusters without internet access.
    app = FastAPIOffline(
        title="segserve",
        version=version("segserve"),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    services = Services(settings=settings, loader=DatasetLoader(settings))
    app.state.services = services
    install_problem_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    app.add_middleware(WorkerHeaderMiddleware, workers=settings.workers)
    app.include_router(health.router)
    # The bearer scheme only when there is a token: the OpenAPI document then declares it.
    guards = [Depends(require_token)] if settings.api_token is not None else []
    v1 = APIRouter(dependencies=[*guards, Depends(reject_unknown_query)])
    for module in (dataset, samples, stats, crops, batches):
        v1.include_router(module.router)
    app.include_router(v1)
    install_browser(app)
    _complete_openapi(app, settings)
    return app


def _complete_openapi(app: FastAPI, settings: Settings) -> None:
    """Have the OpenAPI document list error bodies as ``application/problem+json``, and give
    the limits of ``settings``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = document_limits(move_problems_to_problem_json(build()), settings)
            if settings.api_token is None:
                document = drop_status(document, 401)  # nothing asks for a token
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

"""Liveness, readiness and metrics: open to everyone, never behind the token."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.deps import MetricsDep, ServicesDep
from app.metrics import MEDIA_TYPE
from app.models import Status
from app.problems import DrainingError, problem_responses

router = APIRouter(prefix="", tags=["operations"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> Status:
    """200 as long as the process serves requests, whether or not the dataset is loaded."""
    return Status(status="ok")


@router.get("/readyz", summary="Readiness", responses=problem_responses(503))
async def readyz(services: ServicesDep) -> Status:
    """200 once the dataset is loaded; a 503 problem saying why while loading (the phase, with
    done / total), after a failure, or while the server shuts down."""
    if services.slots.draining:
        raise DrainingError("the server is shutting down")
    services.loader.dataset()
    return Status(status="ready")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {"schema": {"type": "string"}}}}},
)
async def metrics(registry: MetricsDep) -> Response:
    """Requests by route and status, latency, samples and bytes served, in the text format."""
    return Response(registry.exposition(), media_type=MEDIA_TYPE)

"""Prometheus metrics: requests by route template and status, latency, samples and bytes served.

Each app owns a registry (two apps in one process do not collide). With several
uvicorn workers the CLI sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers
start; prometheus-client then keeps the values in files there, and ``/metrics``
merges every worker's files.
"""

from __future__ import annotations

import os
import time
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MEDIA_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED: Final = "<unmatched>"
_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_WAIT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class AdmissionMetrics:
    """The admission queue of heavy requests: slots in use, waiting requests, waits, refusals."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.busy = Gauge(
            "segserve_admission_slots_busy",
            "Heavy requests (or a stream's batches) being built now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.limit = Gauge(
            "segserve_admission_slots",
            "Heavy requests built at once (SEGSERVE_MAX_CONCURRENCY, per worker).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.depth = Gauge(
            "segserve_admission_queue_depth",
            "Heavy requests waiting for a slot.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.wait = Histogram(
            "segserve_admission_wait_seconds",
            "Time a heavy request waited for its slot (0 when one was free).",
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.refused = Counter(
            "segserve_admission_refused",
            "Heavy requests refused with 503, by reason (queue-full, timeout, draining).",
            ["reason"],
            registry=registry,
        )


class Metrics:
    """The service's metrics, registered in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "segserve_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "segserve_http_request_duration_seconds",
            "Time from request to the last byte of the response, by route template.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.response_bytes = Counter(
            "segserve_http_response_bytes",
            "Response body bytes sent, by route template.",
            ["route"],
            registry=self.registry,
        )
        self.samples = Counter(
            "segserve_samples_served",
            "Crop pairs assembled for clients (rows of batches and crops), by split.",
            ["split"],
            registry=self.registry,
        )
        self.batches = Counter(
            "segserve_batches_built",
            "Batches (and single crops) assembled, by split.",
            ["split"],
            registry=self.registry,
        )
        self.streams = Gauge(
            "segserve_epoch_streams_in_progress",
            "Epoch streams being sent.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

        self.admission = AdmissionMetrics(self.registry)

    def exposition(self) -> bytes:
        """The text exposition: every worker's values in multiprocess mode, else this app's."""
        if os.environ.get(MULTIPROCESS_ENV):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/splits/{split}``), bounded in cardinality."""
    route = scope.get("route")
    path = getattr(route, "path", None) if isinstance(route, BaseRoute) else None
    return path if isinstance(path, str) else UNMATCHED


class MetricsMiddleware:
    """Pure ASGI middleware (streams stay streams) that counts requests, latency and bytes."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; record it once the response is over (or failed)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status, sent = 500, 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self._record(scope, status, sent, time.perf_counter() - start)

    def _record(self, scope: Scope, status: int, sent: int, seconds: float) -> None:
        route, method = route_template(scope), scope["method"]
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.latency.labels(method, route).observe(seconds)
        self.metrics.response_bytes.labels(route).inc(sent)

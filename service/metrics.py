"""The Prometheus objects, in one registry per app, and the middleware that counts requests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
UNMATCHED_ROUTE = "<unmatched>"

request_logger = logging.getLogger("service.requests")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter(
            "mri_http_requests", "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"], registry=r,
        )
        self.request_seconds = Histogram(
            "mri_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response.",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "mri_queue_wait_seconds", "Time an image waited in the queue before its batch ran.",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.model_seconds = Histogram(
            "mri_model_inference_seconds", "Time of one model call (one batch).",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.batch_size = Histogram(
            "mri_batch_size", "Images per model call.", buckets=BATCH_SIZE_BUCKETS, registry=r,
        )
        self.predictions = Counter(
            "mri_predictions", "Images answered, by predicted label.", ["label"], registry=r,
        )
        self.rejected_inputs = Counter(
            "mri_rejected_inputs",
            "Uploads or requests refused before reaching the model, by reason.",
            ["reason"], registry=r,
        )
        self.queue_depth = Gauge(
            "mri_queue_depth", "Images waiting for the model.", registry=r,
        )
        self.model_info = Gauge(
            "mri_model_info", "The loaded model: 1 for the served name and version.",
            ["name", "version"], registry=r,
        )
        self.model_ready = Gauge(
            "mri_model_ready", "1 when the model is loaded and warmed up, else 0.", registry=r,
        )

    def observe_batch(self, size: int, queue_waits: Sequence[float], model_seconds: float) -> None:
        self.batch_size.observe(size)
        self.model_seconds.observe(model_seconds)
        for wait in queue_waits:
            self.queue_wait_seconds.observe(wait)

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data


def route_template(routes: Sequence[BaseRoute], scope: Scope, arrived: Scope) -> str:
    """The matched route's path template (`/predict`, `/static`), never the raw path, to bound
    labels. `arrived` is the scope as it arrived, before routing rewrote it for a mount."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    for candidate in routes:  # a mount, or a request that ended before routing (early 413)
        match, _ = candidate.matches(arrived)
        if match != Match.NONE:
            return str(getattr(candidate, "path", UNMATCHED_ROUTE)) or UNMATCHED_ROUTE
    return UNMATCHED_ROUTE


class MetricsMiddleware:
    """Counts every HTTP request by route template, method and status, times it, and (when
    `log_requests`) logs one line for it: route template, method, status, latency, model
    version; never the raw path, the client's address or anything from the body."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        routes: Sequence[BaseRoute],
        log_requests: bool = False,
        model_version: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.log_requests = log_requests
        self.model_version = model_version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        arrived = dict(scope)

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(self.routes, scope, arrived)
            method = scope["method"]
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.request_seconds.labels(route, method).observe(seconds)
            if self.log_requests:
                self.log(route, method, status, seconds)

    def log(self, route: str, method: str, status: int, seconds: float) -> None:
        latency_ms = round(seconds * 1000, 1)
        request_logger.info(
            "%s %s %d %.1f ms", method, route, status, latency_ms,
            extra={"route": route, "method": method, "status": status,
                   "latency_ms": latency_ms, "model_version": self.model_version()},
        )

"""The middleware that counts, times and logs every HTTP request by route template and status."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import Metrics

UNMATCHED_ROUTE = "<unmatched>"

request_logger = logging.getLogger("service.requests")


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

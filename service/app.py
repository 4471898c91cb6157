"""The app factory: settings in, a FastAPI app out, with its lifespan, routes and middleware."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from service import __version__
from service.config import Settings
from service.http_metrics import MetricsMiddleware
from service.http_server import GracePeriodEndMiddleware
from service.limits import (
    MULTIPART_ALLOWANCE,
    BodyLimitMiddleware,
    BodyTimeout,
    BodyTooLarge,
    handle_body_timeout,
    handle_body_too_large,
)
from service.logs import REQUEST_ID_HEADER, with_request_ids
from service.metrics import Metrics
from service.oip_errors import ProtocolErrorShape
from service.problems import INFERENCE_PATH, install_problem_handlers, relabel_error_media_types
from service.routes import (
    admin,
    convert,
    explain,
    health,
    metrics,
    model,
    oip,
    predict,
    predict_raw,
    ui,
)
from service.runtime import Runtime
from service.security import API_KEY_HEADER, ApiKeyMiddleware, SecurityHeadersMiddleware

DESCRIPTION = """\
Classifies 2-D brain MRI slices: `tumor_probability` is P(tumor) from the exported SavedModel,
and `label` applies the model card's threshold. A research and triage aid, not a diagnostic
device.

Errors are RFC 9457 problem details (`application/problem+json`) carrying the request's
`request_id`; every answer echoes it in `X-Request-ID` (sent by the client, or made here).
"""

ROUTE_MODULES = (predict, predict_raw, explain, convert, health, model, metrics, oip, admin, ui)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else Settings()
    logging.getLogger("service").setLevel(settings.log_level.upper())
    app_metrics = Metrics()
    runtime = Runtime(settings, app_metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loading runs in the background so /health/live answers (and /health/ready says 503)
        # while TensorFlow and the model load.
        runtime.start_loading()
        try:
            yield
        finally:
            await asyncio.to_thread(runtime.shutdown)

    app = FastAPI(
        title="Brain MRI tumor classifier",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by routes/ui.py from vendored assets (works offline)
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.metrics = app_metrics
    app.state.runtime = runtime

    install_problem_handlers(app)
    app.add_exception_handler(BodyTooLarge, handle_body_too_large)
    app.add_exception_handler(BodyTimeout, handle_body_timeout)
    for module in ROUTE_MODULES:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=ui.STATIC_DIR), name="static")
    add_middleware(app, settings, app_metrics, runtime)
    document_problem_json(app)
    return app


def add_middleware(app: FastAPI, settings: Settings, metrics: Metrics, runtime: Runtime) -> None:
    """Added last = outermost. From the outside in: request ID and security headers (around
    Starlette's error middleware too, so even a 500 carries them), the grace period's 503,
    metrics and the request log line, the Open Inference Protocol's error shape on its routes,
    CORS, the API key (before the body is read), the body's byte and time limits."""
    app.add_middleware(
        BodyLimitMiddleware,
        metrics=metrics,
        default_limit=settings.max_upload_bytes + MULTIPART_ALLOWANCE,
        path_limits={"/predict/batch": settings.max_batch_upload_bytes},
        pattern_limits=[(INFERENCE_PATH, oip.body_limit(settings))],
        timeout_seconds=settings.body_timeout_seconds,
    )
    app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key, metrics=metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=[API_KEY_HEADER, "Content-Type", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER],
        )
    # Outside the body limit, so its 413s on /v2 get the protocol's shape too.
    app.add_middleware(ProtocolErrorShape, prefix=oip.PREFIX)
    # Routers are included as wrappers; the metrics' fallback route matching needs the routes
    # (and the app's own: /openapi.json and the /static mount).
    routes = [route for module in ROUTE_MODULES for route in module.router.routes]
    routes += [route for route in app.router.routes if isinstance(getattr(route, "path", 0), str)]
    app.add_middleware(
        MetricsMiddleware,
        metrics=metrics,
        routes=routes,
        log_requests=settings.access_log,
        model_version=lambda: runtime.runner.card.version if runtime.runner else None,
    )
    app.add_middleware(GracePeriodEndMiddleware, retry_after_seconds=settings.retry_after_seconds)
    build_stack = app.build_middleware_stack

    def build_outer_stack() -> Any:
        return with_request_ids(SecurityHeadersMiddleware(build_stack()))

    app.build_middleware_stack = build_outer_stack  # type: ignore[method-assign]


def document_problem_json(app: FastAPI) -> None:
    """The OpenAPI document says errors are application/problem+json."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = relabel_error_media_types(default_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

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
from starlette.routing import Mount

from service import __version__
from service.config import Settings
from service.deps import API_KEY_HEADER
from service.http_metrics import MetricsMiddleware
from service.limits import (
    MULTIPART_ALLOWANCE,
    BodyLimitMiddleware,
    BodyTooLarge,
    handle_body_too_large,
)
from service.metrics import Metrics
from service.oip_errors import ProtocolErrorShape
from service.problems import INFERENCE_PATH, install_problem_handlers, relabel_error_media_types
from service.routes import admin, convert, explain, health, metrics, model, oip, predict, ui
from service.runtime import Runtime

DESCRIPTION = """\
Classifies 2-D brain MRI slices: `tumor_probability` is P(tumor) from the exported SavedModel,
and `label` applies the model card's threshold. A research and triage aid, not a diagnostic
device.

Errors are RFC 9457 problem details (`application/problem+json`).
"""

ROUTE_MODULES = (predict, explain, convert, health, model, metrics, oip, admin, ui)


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
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.metrics = app_metrics
    app.state.runtime = runtime

    install_problem_handlers(app)
    app.add_exception_handler(BodyTooLarge, handle_body_too_large)
    for module in ROUTE_MODULES:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=ui.STATIC_DIR), name="static")
    add_middleware(app, settings, app_metrics)
    document_problem_json(app)
    return app


def add_middleware(app: FastAPI, settings: Settings, app_metrics: Metrics) -> None:
    """Body limits, CORS when configured, the Open Inference Protocol's error shape on its
    routes, and (outermost) the request metrics."""
    app.add_middleware(
        BodyLimitMiddleware,
        metrics=app_metrics,
        default_limit=settings.max_upload_bytes + MULTIPART_ALLOWANCE,
        path_limits={"/predict/batch": settings.max_batch_upload_bytes},
        pattern_limits=[(INFERENCE_PATH, oip.body_limit(settings))],
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=[API_KEY_HEADER, "Content-Type"],
        )
    # Outside the body limit, so its 413s on /v2 get the protocol's shape too.
    app.add_middleware(ProtocolErrorShape, prefix=oip.PREFIX)
    # Routers are included as wrappers; the metrics' fallback route matching needs the routes.
    flat_routes = [route for module in ROUTE_MODULES for route in module.router.routes]
    flat_routes += [route for route in app.router.routes if isinstance(route, Mount)]
    # Added last = outermost: metrics see every answer, including the body limit's 413s.
    app.add_middleware(MetricsMiddleware, metrics=app_metrics, routes=flat_routes)


def document_problem_json(app: FastAPI) -> None:
    """The OpenAPI document says errors are application/problem+json."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = relabel_error_media_types(default_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

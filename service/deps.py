"""Dependencies the routes declare in their signatures (typed aliases, FastAPI style)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from service.config import Settings
from service.errors import Unauthenticated
from service.metrics import Metrics
from service.runtime import Runtime
from service.security import API_KEY_HEADER, api_key_matches

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Required on the prediction routes, /explain, /convert and /admin/reload only "
    "when the service has MRI_API_KEY set.",
)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def require_api_key(
    settings: SettingsDep, provided: Annotated[str | None, Security(api_key_header)] = None
) -> None:
    """Unauthenticated unless the configured key was sent (constant-time comparison).
    ApiKeyMiddleware has already refused such a request before its body was read; this
    dependency puts the key in the OpenAPI document."""
    if not api_key_matches(settings.api_key, provided):
        raise Unauthenticated(API_KEY_HEADER)


ApiKeyDep = Annotated[None, Depends(require_api_key)]

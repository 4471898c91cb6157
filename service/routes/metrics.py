"""GET /metrics: Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.deps import MetricsDep, RuntimeDep

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(metrics: MetricsDep, runtime: RuntimeDep) -> Response:
    batcher = runtime.batcher
    metrics.queue_depth.set(batcher.depth if batcher is not None else 0)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

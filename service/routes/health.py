"""GET /health/live, /health/ready and /health: liveness and readiness, kept apart."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import RuntimeDep
from service.gate import gate_status
from service.problems import problem_responses
from service.schemas import Liveness, ModelRef, Readiness

router = APIRouter(tags=["health"])


@router.get("/health/live", summary="200 while the process answers", response_model=Liveness)
async def live() -> Liveness:
    return Liveness()


def readiness(runtime: RuntimeDep) -> Readiness:
    runner, _ = runtime.ready_parts()
    return Readiness(model=ModelRef(name=runner.card.name, version=runner.card.version),
                     input_gate=gate_status(runner.card, runtime.settings.input_gate))


@router.get(
    "/health/ready",
    summary="200 only when the model is loaded and warmed up, else 503 saying why",
    response_model=Readiness,
    responses=problem_responses(503),
)
@router.get(
    "/health",
    summary="Same as /health/ready",
    response_model=Readiness,
    responses=problem_responses(503),
)
async def ready(runtime: RuntimeDep) -> Readiness:
    return readiness(runtime)

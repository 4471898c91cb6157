"""GET /model: the loaded model's card, as exported beside the SavedModel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from model_contract import card_to_dict
from service.deps import RuntimeDep
from service.problems import problem_responses

router = APIRouter(tags=["model"])


@router.get(
    "/model",
    summary="The served model's card: classes, threshold, input, metrics, training data",
    responses=problem_responses(503),
)
async def model_card(runtime: RuntimeDep) -> dict[str, Any]:
    runner, _ = runtime.ready_parts()
    return card_to_dict(runner.card)

"""POST /admin/reload: look for a new model version now, and serve it once it is warmed up."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.deps import ApiKeyDep, RuntimeDep
from service.problems import problem_responses
from service.schemas import ModelRef

router = APIRouter(tags=["admin"])


class Reload(BaseModel):
    reloaded: bool = Field(description="True when a new version replaced the serving one.")
    model: ModelRef = Field(description="The version serving now.")


@router.post(
    "/admin/reload",
    summary="Load the wanted model version (the highest, or MRI_MODEL_VERSION) if it is not "
    "the one serving, warm it up and swap it in between batches; 409 when it is refused",
    response_model=Reload,
    responses=problem_responses(401, 409, 503),
)
async def reload(runtime: RuntimeDep, _: ApiKeyDep) -> Reload:
    # Loading takes seconds of TensorFlow work: a thread, never the event loop. Requests go on
    # being answered by the serving version meanwhile.
    reloaded = await asyncio.to_thread(runtime.reload, True)
    runner, _batcher = runtime.ready_parts()
    return Reload(reloaded=reloaded,
                  model=ModelRef(name=runner.card.name, version=runner.card.version))

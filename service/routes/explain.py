"""POST /explain: a prediction with its Grad-CAM heatmap, computed by the model's `explain`
signature (JSON with the heatmap as a PNG, or with `Accept: image/png` the scan overlaid)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, File, Header, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from model_contract import ModelCard
from service.deps import ApiKeyDep, MetricsDep, RuntimeDep
from service.errors import ExplainUnsupported
from service.gate import InputCheck as GateCheck
from service.gate import check_input
from service.heatmaps import COLOUR_MAP, DEFAULT_OPACITY, heatmap_png_base64, overlay_png
from service.images import PreparedImage
from service.model import Explanation as ModelExplanation
from service.model import ModelAnswer
from service.negotiation import prefers
from service.operating_point_choice import Decision
from service.problems import ProblemDetails, problem_responses
from service.routes.predict import (
    ACCEPTED_NOTE,
    NOT_BRAIN_MRI_NOTE,
    OperatingPointQuery,
    decision_for,
    read_one,
    refuse_several_files,
)
from service.schemas import DicomRef, Explanation, Heatmap, InputCheck, ModelRef

router = APIRouter(tags=["explain"])
PNG = "image/png"

OVERLAY_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": f"JSON by default; with `Accept: {PNG}`, the scan with the heatmap "
        f"overlaid in the {COLOUR_MAP} colour map (weight {DEFAULT_OPACITY} x heat).",
        "content": {PNG: {"schema": {"type": "string", "format": "binary"}}},
    }
}


def wants_png(accept: str | None) -> bool:
    """True when the client prefers the PNG overlay to JSON (JSON wins ties and no header)."""
    return prefers(accept, (PNG, "image/*", "*/*"))


def explanation_body(
    card: ModelCard, result: ModelExplanation, prepared: PreparedImage,
    check: GateCheck | None, decision: Decision,
) -> Explanation:
    height, width = result.heatmap.shape
    identity = prepared.dicom
    return Explanation(
        label=card.label_for(result.probability, decision.threshold),
        tumor_probability=result.probability,
        threshold=decision.threshold,
        operating_point=decision.operating_point,
        model=ModelRef(name=card.name, version=card.version),
        dicom=DicomRef(**identity.as_dict()) if identity is not None else None,
        input_check=None if check is None else InputCheck(**dataclasses.asdict(check)),
        heatmap=Heatmap(width=width, height=height, png_base64=heatmap_png_base64(result.heatmap)),
    )


@router.post(
    "/explain",
    summary="Classify one slice and show where the model found evidence for tumor (Grad-CAM)",
    response_model=Explanation,
    responses={**OVERLAY_RESPONSE, **problem_responses(400, 401, 408, 413, 415, 422, 501, 503),
               422: {"model": ProblemDetails, "description": NOT_BRAIN_MRI_NOTE}},
)
async def explain(
    file: Annotated[UploadFile, File(description=f"One image. {ACCEPTED_NOTE}")],
    request: Request,
    runtime: RuntimeDep,
    metrics: MetricsDep,
    _: ApiKeyDep,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
    operating_point: OperatingPointQuery = None,
) -> Response | Explanation:
    runner, _batcher = runtime.ready_parts()
    if not runner.can_explain:
        raise ExplainUnsupported(runner.card.name, runner.card.version)
    decision = decision_for(runner.card, operating_point, runtime)
    await refuse_several_files(request)
    prepared = await read_one(file, runtime, "/explain")
    result = await runtime.explain(runner, prepared.canonical)
    # The same input gate and MRI_INPUT_GATE mode as /predict (NotBrainMRI when it refuses).
    answer = ModelAnswer(result.probability, result.brain_mri_score)
    check = check_input(answer, runner.card, runtime.settings.input_gate)
    label = runner.card.label_for(result.probability, decision.threshold)
    metrics.explanations.labels(label=label).inc()
    if wants_png(accept):
        overlay = await run_in_threadpool(overlay_png, prepared.canonical, result.heatmap)
        return Response(overlay, media_type=PNG)
    return await run_in_threadpool(explanation_body, runner.card, result, prepared, check,
                                   decision)

"""POST /predict/raw: one image sent as the request body itself (`Content-Type: image/png`,
`image/jpeg`, `application/dicom`, ... or `application/octet-stream`), no multipart form around
it. The same checks, queue and answers as POST /predict (JSON, or a DICOM report on
`Accept: application/dicom`), for clients that send bytes (`curl --data-binary`, other
services); the format is still read from the bytes, never from the header."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from starlette.responses import Response

from service.deps import ApiKeyDep, MetricsDep, RuntimeDep
from service.errors import FileTooLarge
from service.problems import Problem, problem_responses
from service.routes.predict import (
    ACCEPT_NOTE,
    ACCEPTED_NOTE,
    REPORT_RESPONSE,
    OperatingPointQuery,
    answer_one,
    decision_for,
)
from service.schemas import Prediction

router = APIRouter(tags=["predict"])
RAW_PATH = "/predict/raw"
# What the Content-Type may say; the bytes decide the format (415 for one they do not read).
RAW_MEDIA_TYPES = ("image/*", "application/octet-stream", "application/dicom")
BINARY = {"schema": {"type": "string", "format": "binary"}}


def is_raw_media_type(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type.startswith("image/") or media_type in RAW_MEDIA_TYPES


@router.post(
    RAW_PATH,
    summary="Classify one brain MRI slice sent as the request body",
    description=f"The body is the image file itself. {ACCEPTED_NOTE}",
    response_model=Prediction,
    responses={**REPORT_RESPONSE, **problem_responses(401, 406, 413, 415, 422, 503)},
    openapi_extra={"requestBody": {
        "required": True, "content": dict.fromkeys(RAW_MEDIA_TYPES, BINARY),
    }},
)
async def predict_raw(
    request: Request,
    runtime: RuntimeDep,
    metrics: MetricsDep,
    _: ApiKeyDep,
    accept: Annotated[str | None, Header(description=ACCEPT_NOTE)] = None,
    operating_point: OperatingPointQuery = None,
) -> Prediction | Response:
    content_type = request.headers.get("content-type", "")
    if not is_raw_media_type(content_type):
        raise Problem(
            415, "unsupported_media_type",
            f"{RAW_PATH} takes the image itself as the body, with Content-Type image/* or "
            f"application/octet-stream, not {content_type or 'no Content-Type'}; "
            "multipart uploads go to /predict.",
        )
    runner, _batcher = runtime.ready_parts()  # 503 before the body is read
    decision = decision_for(runner.card, operating_point, runtime)
    data = await request.body()
    limit = runtime.settings.max_upload_bytes
    if len(data) > limit:
        raise FileTooLarge(len(data), limit)
    images = await runtime.prepare(data)
    return await answer_one(images, runtime, metrics, accept, decision, RAW_PATH)

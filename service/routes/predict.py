"""POST /predict (one image) and POST /predict/batch (several, each answered on its own).

A DICOM file is recognised from its bytes and converted by the contract's pixel rule; its
answers carry its UIDs (`dicom`). /predict answers a DICOM Structured Report instead of JSON
when the client asks for `application/dicom`; /predict/batch gives one result per frame.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, File, Header, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from model_contract import ModelCard
from model_contract.dicom import DicomIdentity
from service.deps import ApiKeyDep, MetricsDep, RuntimeDep
from service.dicom_report import MEDIA_TYPE as DICOM_MEDIA_TYPE
from service.dicom_report import Finding, structured_report
from service.errors import (
    FileTooLarge,
    MultiFrame,
    NotAcceptable,
    ServiceError,
    SeveralFiles,
    TooManyFiles,
)
from service.gate import GateMode, check_input
from service.images import PreparedImage
from service.metrics import Metrics
from service.model import ModelAnswer
from service.operating_point_choice import Decision, decide
from service.problems import ProblemDetails, problem_responses, record_rejection, to_problem
from service.runtime import Runtime
from service.schemas import (
    BatchItem,
    BatchPrediction,
    DicomRef,
    InputCheck,
    ModelRef,
    Prediction,
)

router = APIRouter(tags=["predict"])
BATCH_PATH = "/predict/batch"
JSON_MEDIA_TYPE = "application/json"
NOT_BRAIN_MRI_NOTE = (
    "Unprocessable Content: an empty or undecodable file, or (type ending `not_brain_mri`) an "
    "image the brain-MRI input gate refused, with its `brain_mri_score` and the model's "
    "`brain_mri_threshold` (MRI_INPUT_GATE=enforce)."
)

ACCEPTED_NOTE = (
    "PNG, JPEG, BMP, TIFF, GIF or WebP (8-, 16- or 32-bit integer or float greyscale, RGB, "
    "RGBA, palette or CMYK), or a DICOM Part 10 MR image (uncompressed, RLE, JPEG, JPEG-LS or "
    "JPEG 2000). The format is read from the bytes, not the file name."
)
ACCEPT_NOTE = (
    f"`{DICOM_MEDIA_TYPE}` to receive a DICOM Comprehensive SR referencing the input instead "
    "of JSON (DICOM input only; 406 otherwise)."
)
REPORT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The prediction (JSON), or with `Accept: application/dicom` a DICOM "
        "Comprehensive SR (TID 1500) referencing the input instance.",
        "content": {DICOM_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


OperatingPointQuery = Annotated[
    str | None,
    Query(description="Named operating point of the model card (e.g. `screening`, the usual "
          "default, or `balanced`); unset: MRI_OPERATING_POINT, else the card's default. An "
          "unknown name is 422 `unknown_operating_point`, listing the card's names. Models "
          "without operating points use their card's threshold.",
          examples=["screening"]),
]


def decision_for(card: ModelCard, requested: str | None, runtime: Runtime) -> Decision:
    return decide(card, requested, runtime.settings.operating_point)


def prediction_for(
    card: ModelCard, answer: ModelAnswer, mode: GateMode, metrics: Metrics,
    prepared: PreparedImage, decision: Decision,
) -> Prediction:
    """The answer for one image at the decision's threshold, after the input gate
    (NotBrainMRI when it refuses it)."""
    if answer.brain_mri_score is not None and mode is not GateMode.OFF:
        metrics.brain_mri_scores.observe(answer.brain_mri_score)
    check = check_input(answer, card, mode)
    label = card.label_for(answer.tumor_probability, decision.threshold)
    metrics.predictions.labels(label=label).inc()
    identity = prepared.dicom
    return Prediction(
        label=label,
        tumor_probability=answer.tumor_probability,
        threshold=decision.threshold,
        operating_point=decision.operating_point,
        model=ModelRef(name=card.name, version=card.version),
        dicom=DicomRef(**identity.as_dict()) if identity is not None else None,
        input_check=None if check is None else InputCheck(**dataclasses.asdict(check)),
    )


async def read_checked(upload: UploadFile, runtime: Runtime) -> list[PreparedImage]:
    limit = runtime.settings.max_upload_bytes
    if upload.size is not None and upload.size > limit:
        raise FileTooLarge(upload.size, limit)
    return await runtime.prepare(await upload.read())


async def refuse_several_files(request: Request) -> None:
    """SeveralFiles for a form with more than one `file` part: FastAPI would take the last one
    and answer for it alone, which the client could mistake for an answer about the first."""
    parts = len((await request.form()).getlist("file"))
    if parts > 1:
        raise SeveralFiles(parts)


async def read_one(upload: UploadFile, runtime: Runtime, route: str) -> PreparedImage:
    """The one image of a single-image route; MultiFrame for a multi-frame DICOM file."""
    return only_image(await read_checked(upload, runtime), route)


def only_image(images: list[PreparedImage], route: str) -> PreparedImage:
    """The one image of a single-image route; MultiFrame for a multi-frame DICOM file."""
    if len(images) > 1:
        raise MultiFrame(len(images), BATCH_PATH, route=route)
    return images[0]


def answers_report(accept: str | None, prepared: PreparedImage) -> bool:
    """True when the client asks for DICOM (before JSON); NotAcceptable when it does for an
    input that is not DICOM, since a report must reference a DICOM instance."""
    media_types = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    if DICOM_MEDIA_TYPE not in media_types:
        return False
    if JSON_MEDIA_TYPE in media_types[: media_types.index(DICOM_MEDIA_TYPE)]:
        return False
    if prepared.dicom is None:
        raise NotAcceptable(
            f"A DICOM report ({DICOM_MEDIA_TYPE}) is made only for DICOM input; this file is "
            f"{prepared.format}. Ask for {JSON_MEDIA_TYPE}.",
            [JSON_MEDIA_TYPE],
        )
    return True


async def report_response(
    prediction: Prediction, identity: DicomIdentity, card: ModelCard
) -> Response:
    finding = Finding(
        prediction.tumor_probability, prediction.label, card.positive_class,
        prediction.threshold, prediction.model.name, prediction.model.version,
    )
    report = await run_in_threadpool(structured_report, identity, finding)
    return Response(report, media_type=DICOM_MEDIA_TYPE)


@router.post(
    "/predict",
    summary="Classify one brain MRI slice (422 not_brain_mri when the input gate refuses it)",
    response_model=Prediction,
    responses={**REPORT_RESPONSE, **problem_responses(400, 401, 406, 408, 413, 415, 422, 503),
               422: {"model": ProblemDetails, "description": NOT_BRAIN_MRI_NOTE}},
)
async def predict(
    file: Annotated[UploadFile, File(description=f"One image. {ACCEPTED_NOTE}")],
    request: Request,
    runtime: RuntimeDep,
    metrics: MetricsDep,
    _: ApiKeyDep,
    accept: Annotated[str | None, Header(description=ACCEPT_NOTE)] = None,
    operating_point: OperatingPointQuery = None,
) -> Prediction | Response:
    runner, _batcher = runtime.ready_parts()  # 503 before the upload is read
    decision = decision_for(runner.card, operating_point, runtime)  # 422 before it, too
    await refuse_several_files(request)
    images = await read_checked(file, runtime)
    return await answer_one(images, runtime, metrics, accept, decision)


async def answer_one(
    images: list[PreparedImage], runtime: Runtime, metrics: Metrics, accept: str | None,
    decision: Decision, route: str = "/predict",
) -> Prediction | Response:
    """The answer to one checked upload (/predict, /predict/raw): JSON, or the DICOM report."""
    runner, batcher = runtime.ready_parts()
    prepared = only_image(images, route)
    report = answers_report(accept, prepared)
    answer = await batcher.predict(prepared.canonical)
    prediction = prediction_for(runner.card, answer, runtime.settings.input_gate, metrics,
                                prepared, decision)
    if report and prepared.dicom is not None:
        return await report_response(prediction, prepared.dicom, runner.card)
    return prediction


def batch_error(error: BaseException, runtime: Runtime, metrics: Metrics) -> ProblemDetails:
    """One file's refusal inside /predict/batch, shaped and counted like a whole request's."""
    if not isinstance(error, ServiceError):
        raise error
    problem = to_problem(error, runtime.settings.retry_after_seconds)
    record_rejection(metrics, BATCH_PATH, problem.reason)
    return ProblemDetails.model_validate(problem.to_body(BATCH_PATH))


def batch_item(
    filename: str, prepared: PreparedImage, answer: ModelAnswer | BaseException,
    card: ModelCard, runtime: Runtime, metrics: Metrics, decision: Decision,
) -> BatchItem:
    """One image's entry: its prediction, or its own error (a refusal by the gate too)."""
    try:
        if isinstance(answer, BaseException):
            raise answer
        prediction = prediction_for(card, answer, runtime.settings.input_gate, metrics,
                                    prepared, decision)
    except ServiceError as error:
        return BatchItem(filename=filename, frame=prepared.frame,
                         error=batch_error(error, runtime, metrics))
    return BatchItem(filename=filename, frame=prepared.frame, **prediction.model_dump())


@router.post(
    BATCH_PATH,
    summary="Classify several slices; one bad file never fails the others",
    response_model=BatchPrediction,
    response_model_exclude_none=True,
    responses=problem_responses(400, 401, 408, 413, 422, 503),
)
async def predict_batch(
    files: Annotated[
        list[UploadFile],
        File(description=f"1 to MRI_MAX_BATCH_FILES (default 32) files. {ACCEPTED_NOTE} "
             "A multi-frame DICOM file gets one result per frame."),
    ],
    runtime: RuntimeDep,
    metrics: MetricsDep,
    _: ApiKeyDep,
    operating_point: OperatingPointQuery = None,
) -> BatchPrediction:
    runner, batcher = runtime.ready_parts()
    card = runner.card
    decision = decision_for(card, operating_point, runtime)
    limit = runtime.settings.max_batch_files
    if len(files) > limit:
        raise TooManyFiles(len(files), limit)
    checked = await asyncio.gather(
        *(read_checked(upload, runtime) for upload in files), return_exceptions=True
    )
    for outcome in checked:
        if isinstance(outcome, BaseException) and not isinstance(outcome, ServiceError):
            raise outcome
    good = [image for outcome in checked if isinstance(outcome, list) for image in outcome]
    futures = batcher.submit_many([prepared.canonical for prepared in good])
    answers = iter(await asyncio.gather(*futures, return_exceptions=True))

    results: list[BatchItem] = []
    for upload, outcome in zip(files, checked, strict=True):
        filename = upload.filename or ""
        if isinstance(outcome, BaseException):
            error = batch_error(outcome, runtime, metrics)
            results.append(BatchItem(filename=filename, error=error))
            continue
        for prepared in outcome:
            results.append(
                batch_item(filename, prepared, next(answers), card, runtime, metrics, decision)
            )
    return BatchPrediction(results=results, model=ModelRef(name=card.name, version=card.version))

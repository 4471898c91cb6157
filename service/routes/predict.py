"""POST /predict (one image) and POST /predict/batch (several, each answered on its own)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile

from model_contract import ModelCard
from service.deps import ApiKeyDep, MetricsDep, RuntimeDep
from service.errors import FileTooLarge, ServiceError, SeveralFiles, TooManyFiles
from service.images import PreparedImage
from service.metrics import Metrics
from service.problems import ProblemDetails, problem_responses, record_rejection, to_problem
from service.runtime import Runtime
from service.schemas import BatchItem, BatchPrediction, ModelRef, Prediction

router = APIRouter(tags=["predict"])
BATCH_PATH = "/predict/batch"

ACCEPTED_NOTE = (
    "PNG, JPEG, BMP, TIFF, GIF or WebP; 8-, 16- or 32-bit (integer or float) greyscale, RGB, "
    "RGBA, palette or CMYK. "
    "The format is read from the bytes, not the file name."
)


def prediction_for(card: ModelCard, probability: float, metrics: Metrics) -> Prediction:
    label = card.label_for(probability)
    metrics.predictions.labels(label=label).inc()
    return Prediction(
        label=label,
        tumor_probability=probability,
        threshold=card.threshold,
        model=ModelRef(name=card.name, version=card.version),
    )


async def read_checked(upload: UploadFile, runtime: Runtime) -> PreparedImage:
    limit = runtime.settings.max_upload_bytes
    if upload.size is not None and upload.size > limit:
        raise FileTooLarge(upload.size, limit)
    return await runtime.prepare(await upload.read())


def batch_error(error: BaseException, runtime: Runtime, metrics: Metrics) -> ProblemDetails:
    """One file's refusal inside /predict/batch, shaped and counted like a whole request's."""
    if not isinstance(error, ServiceError):
        raise error
    problem = to_problem(error, runtime.settings.retry_after_seconds)
    record_rejection(metrics, BATCH_PATH, problem.reason)
    return ProblemDetails.model_validate(problem.to_body(BATCH_PATH))


@router.post(
    "/predict",
    summary="Classify one brain MRI slice",
    response_model=Prediction,
    responses=problem_responses(400, 401, 408, 413, 415, 422, 503),
)
async def predict(
    file: Annotated[UploadFile, File(description=f"One image. {ACCEPTED_NOTE}")],
    request: Request,
    runtime: RuntimeDep,
    metrics: MetricsDep,
    _: ApiKeyDep,
) -> Prediction:
    runner, batcher = runtime.ready_parts()
    # FastAPI would take the last of several `file` parts and answer for it alone.
    parts = len((await request.form()).getlist("file"))
    if parts > 1:
        raise SeveralFiles(parts)
    prepared = await read_checked(file, runtime)
    probability = await batcher.predict(prepared.canonical)
    return prediction_for(runner.card, probability, metrics)


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
        File(description=f"1 to MRI_MAX_BATCH_FILES (default 32) images. {ACCEPTED_NOTE}"),
    ],
    runtime: RuntimeDep,
    metrics: MetricsDep,
    _: ApiKeyDep,
) -> BatchPrediction:
    runner, batcher = runtime.ready_parts()
    card = runner.card
    limit = runtime.settings.max_batch_files
    if len(files) > limit:
        raise TooManyFiles(len(files), limit)
    checked = await asyncio.gather(
        *(read_checked(upload, runtime) for upload in files), return_exceptions=True
    )
    for outcome in checked:
        if isinstance(outcome, BaseException) and not isinstance(outcome, ServiceError):
            raise outcome
    good = [outcome for outcome in checked if isinstance(outcome, PreparedImage)]
    futures = batcher.submit_many([prepared.canonical for prepared in good])
    answers = iter(await asyncio.gather(*futures, return_exceptions=True))

    results: list[BatchItem] = []
    for upload, outcome in zip(files, checked, strict=True):
        filename = upload.filename or ""
        answer = next(answers) if isinstance(outcome, PreparedImage) else outcome
        if isinstance(answer, BaseException):
            error = batch_error(answer, runtime, metrics)
            results.append(BatchItem(filename=filename, error=error))
        else:
            prediction = prediction_for(card, answer, metrics)
            results.append(BatchItem(filename=filename, **prediction.model_dump()))
    return BatchPrediction(results=results, model=ModelRef(name=card.name, version=card.version))

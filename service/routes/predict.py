"""POST /predict (one image) and POST /predict/batch (several, each answered on its own)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile

from service.batching import BatcherStopped, QueueFull
from service.deps import ApiKeyDep, MetricsDep, RuntimeDep
from service.images import PreparedImage
from service.metrics import Metrics
from service.model import ModelCard, ModelInputError
from service.problems import Problem, ProblemDetails, problem_responses
from service.runtime import Runtime
from service.schemas import BatchItem, BatchPrediction, ModelRef, Prediction

router = APIRouter(tags=["predict"])

ACCEPTED_NOTE = (
    "PNG, JPEG, BMP, TIFF, GIF or WebP; 8- or 16-bit greyscale, RGB, RGBA, palette or CMYK. "
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
        raise Problem(
            413,
            "file_too_large",
            f"The file is {upload.size} bytes, over the limit of {limit} bytes.",
            limit_bytes=limit,
        )
    return await runtime.prepare(await upload.read())


def model_problem(error: BaseException) -> Problem:
    if isinstance(error, ModelInputError):
        return Problem(
            422, "undecodable", "The image passed the upload checks but the model's decoder "
            "refused it (an unusual encoding of an accepted format)."
        )
    raise error


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
    if len((await request.form()).getlist("file")) > 1:
        raise Problem(
            422, "several_files", "Send exactly one `file` part; /predict/batch takes several."
        )
    prepared = await read_checked(file, runtime)
    try:
        probability = await batcher.predict(prepared.canonical)
    except (QueueFull, BatcherStopped):
        raise runtime.queue_full_problem() from None
    except ModelInputError as error:
        raise model_problem(error) from None
    return prediction_for(runner.card, probability, metrics)


@router.post(
    "/predict/batch",
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
        raise Problem(
            422,
            "too_many_files",
            f"The request has {len(files)} files; at most {limit} are accepted.",
            max_files=limit,
        )
    checked = await asyncio.gather(
        *(read_checked(upload, runtime) for upload in files), return_exceptions=True
    )
    for outcome in checked:
        if isinstance(outcome, BaseException) and not isinstance(outcome, Problem):
            raise outcome
    good = [outcome for outcome in checked if isinstance(outcome, PreparedImage)]
    try:
        futures = batcher.submit_many([prepared.canonical for prepared in good])
    except (QueueFull, BatcherStopped):
        raise runtime.queue_full_problem() from None
    answers = iter(await asyncio.gather(*futures, return_exceptions=True))

    results: list[BatchItem] = []
    for upload, outcome in zip(files, checked, strict=True):
        filename = upload.filename or ""
        if isinstance(outcome, PreparedImage):
            answer = next(answers)
            if isinstance(answer, BaseException):
                outcome = model_problem(answer)
            else:
                prediction = prediction_for(card, answer, metrics)
                results.append(BatchItem(filename=filename, **prediction.model_dump()))
                continue
        assert isinstance(outcome, Problem)
        metrics.rejected_inputs.labels(reason=outcome.reason).inc()
        error = ProblemDetails.model_validate(outcome.to_body("/predict/batch"))
        results.append(BatchItem(filename=filename, error=error))
    return BatchPrediction(results=results, model=ModelRef(name=card.name, version=card.version))

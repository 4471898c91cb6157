"""The Open Inference Protocol v2 (KServe v2, Triton's HTTP API) beside the service's own API: a
thin adapter over the same core. Inference requests go through the same upload checks, limits,
batcher, API key and metrics as /predict; errors are the protocol's {"error": "..."} (see
service/oip_errors.py). The service's own routes stay the simple, documented default."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from model_contract import GATE_OUTPUT_KEY, OUTPUT_KEY, ModelCard
from service import __version__
from service.batching import MicroBatcher
from service.config import Settings
from service.deps import ApiKeyDep, MetricsDep, RuntimeDep
from service.errors import (
    FileTooLarge,
    InvalidInferenceRequest,
    ModelNotFound,
    MultiFrame,
    ServiceError,
    TooManyFiles,
)
from service.images import PreparedImage
from service.metrics import Metrics
from service.model import ModelAnswer, ModelRunner
from service.oip_wire import (
    BINARY_MEDIA_TYPE,
    HEADER_LENGTH,
    INPUT_NAME,
    InferenceRequest,
    OutputTensor,
    binary_outputs,
    encode_response,
    parse_request,
    read_images,
)
from service.operating_point_choice import Decision
from service.routes.predict import decision_for, prediction_for
from service.runtime import Runtime
from service.schemas import Prediction

PREFIX = "/v2"
SERVER_NAME = "brain-mri-classifier"
PLATFORM = "tensorflow_savedmodel"
JSON_ALLOWANCE = 64 * 1024
# The output tensors are named as the SavedModel's outputs (model_contract), plus the label.
PROBABILITY, GATE_SCORE, LABEL = OUTPUT_KEY, GATE_OUTPUT_KEY, "label"


class ProtocolError(BaseModel):
    """The protocol's error object (service/oip_errors.py writes it)."""

    error: str


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ProtocolError, "description": HTTPStatus(status).phrase}
            for status in statuses}


router = APIRouter(prefix=PREFIX, tags=["open inference protocol v2"])

INFER_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": InferenceRequest.model_json_schema()},
        BINARY_MEDIA_TYPE: {"schema": {
            "type": "string", "format": "binary",
            "description": f"The JSON request ({HEADER_LENGTH} bytes), then the binary data of "
            "the inputs whose parameters give binary_data_size.",
        }},
    },
}


INFER_NOTE = (
    "The request's `parameters.operating_point` names one of the model card's operating points "
    "(what /predict takes as `?operating_point=`; unset: MRI_OPERATING_POINT, else the card's "
    "default; an unknown name is 422). The response's `parameters.operating_point` names the "
    "one the labels used; it is absent for a model whose card defines none."
)


def body_limit(settings: Settings) -> int:
    """An inference request's byte limit: the batch upload limit, plus a third for base64 (the
    JSON form) and room for the JSON around it."""
    return settings.max_batch_upload_bytes * 4 // 3 + JSON_ALLOWANCE


def served(
    runtime: Runtime, name: str, version: str | None
) -> tuple[ModelRunner, MicroBatcher[ModelAnswer]]:
    """The loaded model when `name` (and `version`, if given) are the ones served."""
    runner, batcher = runtime.ready_parts()
    card = runner.card
    if name != card.name or version not in (None, str(card.version)):
        asked = name if version is None else f"{name} version {version}"
        raise ModelNotFound(f"No model {asked} here; this server serves {card.name} version "
                            f"{card.version}.")
    return runner, batcher


def output_names(card: ModelCard) -> list[str]:
    """The outputs an answer carries: the brain-MRI gate's score (FP32) too when the model has
    a gate (it is left out of an answer only when the service runs with MRI_INPUT_GATE=off)."""
    return [PROBABILITY, LABEL] + ([GATE_SCORE] if card.input_gate is not None else [])


def output_tensors(predictions: list[Prediction]) -> dict[str, OutputTensor]:
    tensors = {
        PROBABILITY: OutputTensor(
            PROBABILITY, "FP32", [p.tumor_probability for p in predictions]),
        LABEL: OutputTensor(LABEL, "BYTES", [p.label for p in predictions]),
    }
    checks = [p.input_check for p in predictions]
    if predictions and all(check is not None for check in checks):
        tensors[GATE_SCORE] = OutputTensor(
            GATE_SCORE, "FP32", [check.brain_mri_score for check in checks if check is not None])
    return tensors


def model_metadata(card: ModelCard) -> dict[str, Any]:
    datatypes = {PROBABILITY: "FP32", LABEL: "BYTES", GATE_SCORE: "FP32"}
    return {
        "name": card.name,
        "versions": [str(card.version)],
        "platform": PLATFORM,
        "inputs": [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": name, "datatype": datatypes[name], "shape": [-1]}
                    for name in output_names(card)],
    }


@router.get("", summary="Server metadata")
async def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": __version__, "extensions": ["binary_tensor_data"]}


@router.get("/health/live", summary="200 while the process answers")
async def server_live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", summary="200 once the model is loaded and warmed up, else 503",
            responses=errors(503))
async def server_ready(runtime: RuntimeDep) -> dict[str, bool]:
    runtime.ready_parts()
    return {"ready": True}


MODEL_ERRORS = errors(404, 422, 503)
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def model_route(method: str, suffix: str, summary: str, **options: Any,
                ) -> Callable[[Endpoint], Endpoint]:
    """Register an endpoint at `/models/{model_name}<suffix>` and at the same path under
    `/versions/{model_version}`, as the protocol has every model route twice."""
    def register(endpoint: Endpoint) -> Endpoint:
        for path in ("/models/{model_name}", "/models/{model_name}/versions/{model_version}"):
            router.api_route(path + suffix, methods=[method], summary=summary, **options)(
                endpoint)
        return endpoint
    return register


@model_route("GET", "", "Model metadata: inputs and outputs", responses=MODEL_ERRORS)
async def model(runtime: RuntimeDep, model_name: str, model_version: str | None = None,
                ) -> dict[str, Any]:
    runner, _ = served(runtime, model_name, model_version)
    return model_metadata(runner.card)


@model_route("GET", "/ready", "200 when the model is ready, else 503", responses=MODEL_ERRORS)
async def model_ready(runtime: RuntimeDep, model_name: str, model_version: str | None = None,
                      ) -> dict[str, Any]:
    served(runtime, model_name, model_version)
    return {"name": model_name, "ready": True}


def for_element(index: int, error: ServiceError) -> ServiceError:
    """A refusal of one element of the batch says which element it was."""
    error.detail = f"Element {index} of input {INPUT_NAME!r}: {error.detail}"
    return error


async def checked_image(runtime: Runtime, index: int, image: bytes) -> PreparedImage:
    """The /predict upload checks, for one element."""
    try:
        limit = runtime.settings.max_upload_bytes
        if len(image) > limit:
            raise FileTooLarge(len(image), limit)
        frames = await runtime.prepare(image)
        if len(frames) != 1:
            raise MultiFrame(len(frames), "/predict/batch")
        return frames[0]
    except ServiceError as error:
        raise for_element(index, error) from None


async def classify(
    runtime: Runtime, runner: ModelRunner, batcher: MicroBatcher[ModelAnswer],
    images: list[bytes], metrics: Metrics, decision: Decision,
) -> list[Prediction]:
    """/predict's path for N images at once: the same checks, the batcher, the same answers;
    the whole request fails when one image does (the protocol has no per-element errors)."""
    if len(images) > runtime.settings.max_batch_files:
        raise TooManyFiles(len(images), runtime.settings.max_batch_files)
    prepared = await asyncio.gather(
        *(checked_image(runtime, index, image) for index, image in enumerate(images))
    )
    futures = batcher.submit_many([image.canonical for image in prepared])
    predictions = []
    for index, answer in enumerate(await asyncio.gather(*futures, return_exceptions=True)):
        try:
            if isinstance(answer, BaseException):
                raise answer
            predictions.append(prediction_for(runner.card, answer, runtime.settings.input_gate,
                                              metrics, prepared[index], decision))
        except ServiceError as error:
            raise for_element(index, error) from None
    return predictions


def requested_point(inference: InferenceRequest) -> str | None:
    """The request's `parameters.operating_point` (the protocol's place for what /predict
    takes as `?operating_point=`); None: MRI_OPERATING_POINT or the card's default."""
    requested = inference.parameters.get("operating_point")
    if requested is not None and not isinstance(requested, str):
        raise InvalidInferenceRequest(
            "parameters.operating_point must be a string naming one of the model card's "
            "operating points.")
    return requested


@model_route("POST", "/infer", "Classify N encoded images (the Open Inference Protocol)",
             openapi_extra={"requestBody": INFER_BODY}, description=INFER_NOTE,
             responses=errors(400, 401, 404, 413, 415, 422, 503))
async def infer(request: Request, runtime: RuntimeDep, metrics: MetricsDep, _: ApiKeyDep,
                model_name: str, model_version: str | None = None) -> Response:
    runner, batcher = served(runtime, model_name, model_version)
    inference, binary = parse_request(await request.body(), request.headers.get(HEADER_LENGTH))
    images = read_images(inference, binary)
    decision = decision_for(runner.card, requested_point(inference), runtime)
    predictions = await classify(runtime, runner, batcher, images, metrics, decision)
    tensors = output_tensors(predictions)
    card = runner.card
    names, binary_names = binary_outputs(inference, list(tensors))
    header: dict[str, Any] = {"model_name": card.name, "model_version": str(card.version)}
    if decision.operating_point is not None:
        header["parameters"] = {"operating_point": decision.operating_point}
    if inference.id is not None:
        header["id"] = inference.id
    body, headers = encode_response(header, [tensors[name] for name in names], binary_names)
    media_type = BINARY_MEDIA_TYPE if HEADER_LENGTH in headers else "application/json"
    return Response(body, media_type=media_type, headers=headers)

"""One error shape everywhere: RFC 9457 problem details (`application/problem+json`).

This is where an error becomes a status code: `to_problem` maps each domain error of
service/errors.py to its HTTP status and problem type, and `record_rejection` is the one place
that counts refused predictions in the rejected-inputs metric.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from service.errors import (
    EmptyFile,
    ExplainUnsupported,
    FileTooLarge,
    InvalidInferenceRequest,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    ModelReloadFailed,
    MultiFrame,
    NoPixelData,
    NotAcceptable,
    NotBrainMRI,
    QueueFull,
    ServiceError,
    SeveralFiles,
    TooManyFiles,
    TooManyPixels,
    Truncated,
    Unauthenticated,
    Unavailable,
    Undecodable,
    UnknownOperatingPoint,
    UnsupportedFormat,
    UnsupportedModality,
    UnsupportedPixels,
    UnsupportedTransferSyntax,
)
from service.metrics import Metrics

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Problem types the service defines; generic HTTP errors use "about:blank" (RFC 9457 4.2.1).
TYPE_PREFIX = "urn:brain-mri-classifier:problem:"

logger = logging.getLogger("service")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details; extension members (e.g. `errors`) may be present."""

    model_config = ConfigDict(extra="allow")

    type: str = Field("about:blank", description="A URI naming the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request.")
    instance: str | None = Field(None, description="The request path.")
    request_id: str | None = Field(
        None, description="The request's ID, also in the X-Request-ID header and the logs."
    )


# The one mapping from domain errors to HTTP statuses; the most specific class wins.
STATUS_BY_ERROR: dict[type[ServiceError], int] = {
    EmptyFile: 422,
    FileTooLarge: 413,
    UnsupportedFormat: 415,
    TooManyPixels: 413,
    Undecodable: 422,
    TooManyFiles: 422,
    SeveralFiles: 422,
    NotBrainMRI: 422,
    UnsupportedTransferSyntax: 415,
    UnsupportedModality: 422,
    NoPixelData: 422,
    UnsupportedPixels: 422,
    Truncated: 422,
    MultiFrame: 422,
    NotAcceptable: 406,
    InvalidInferenceRequest: 400,
    UnknownOperatingPoint: 422,
    InvalidInput: 422,
    ModelNotFound: 404,
    ModelReloadFailed: 409,
    ModelNotReady: 503,
    QueueFull: 503,
    Unavailable: 503,
    Unauthenticated: 401,
    ExplainUnsupported: 501,
}
# Routes whose refusals are rejected inputs; a readiness probe answered 503 is not one.
PREDICTION_PATH_PREFIXES = ("/predict", "/explain")
# Refusals that say what the model cannot do, not what is wrong with the input.
NOT_REJECTED_INPUTS = frozenset({ExplainUnsupported.reason})
# The Open Inference Protocol's inference route (service/routes/oip.py), any model or version.
INFERENCE_PATH = re.compile(r"^/v2/models/[^/]+(/versions/[^/]+)?/infer$")


class Problem(Exception):
    """An HTTP error, rendered as problem details: a domain error after `to_problem`, or one
    the edge makes itself (an invalid request).

    `reason` is the short, stable name used for the rejected-inputs metric and `type`.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def to_body(self, instance: str | None = None) -> dict[str, Any]:
        return problem_body(
            self.status, self.detail, instance, type_=TYPE_PREFIX + self.reason, **self.extensions
        )


def status_for(error: ServiceError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def to_problem(error: ServiceError, retry_after_seconds: int) -> Problem:
    """The domain error as HTTP: status, problem type from its reason, its fields, and
    `Retry-After` when it is temporary."""
    headers = {"Retry-After": str(retry_after_seconds)} if isinstance(error, Unavailable) else {}
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = f'ApiKey header="{error.header}"'
    return Problem(status_for(error), error.reason, error.detail, headers, **error.fields)


def is_prediction_path(path: str) -> bool:
    return path.startswith(PREDICTION_PATH_PREFIXES) or INFERENCE_PATH.match(path) is not None


def record_rejection(metrics: Metrics | None, path: str, reason: str) -> None:
    """Count a refused prediction (or explanation) request or file in
    `mri_rejected_inputs_total`."""
    if reason in NOT_REJECTED_INPUTS:
        return
    if metrics is not None and is_prediction_path(path):
        metrics.rejected_inputs.labels(reason=reason).inc()


def problem_body(
    status: int,
    detail: str,
    instance: str | None = None,
    type_: str = "about:blank",
    **extensions: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    request_id = correlation_id.get()
    if request_id is not None:
        body["request_id"] = request_id
    body.update(jsonable_encoder(extensions))
    return body


def problem_response(
    body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        body, status_code=int(body["status"]), headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def render_problem(request: Request, problem: Problem) -> Response:
    record_rejection(getattr(request.app.state, "metrics", None), request.url.path,
                     problem.reason)
    return problem_response(problem.to_body(request.url.path), problem.headers)


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return render_problem(request, exc)


async def handle_service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    retry_after = request.app.state.settings.retry_after_seconds
    return render_problem(request, to_problem(exc, retry_after))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code in (204, 304) or exc.status_code < 200:
        return Response(status_code=exc.status_code, headers=headers)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route matches {request.url.path}."
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        allowed = headers.get("allow") or headers.get("Allow") or ""
        detail = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}."
    return problem_response(problem_body(exc.status_code, detail, request.url.path), headers)


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    detail = f"The request is invalid: {summary}" if summary else "The request is invalid."
    return render_problem(request, Problem(422, "invalid_request", detail, errors=errors))


async def handle_unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware calls this, then re-raises so uvicorn logs the traceback.
    logger.error("unhandled error on %s %s: %r", request.method, request.url.path, exc)
    body = problem_body(
        500, "The server failed to handle the request; it has been logged.", request.url.path
    )
    return problem_response(body)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, handle_problem)
    app.add_exception_handler(ServiceError, handle_service_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(Exception, handle_unexpected_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem-details answers."""
    return {
        status: {"model": ProblemDetails, "description": HTTPStatus(status).phrase}
        for status in statuses
    }


def relabel_error_media_types(openapi: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents every response as application/json; problem details are
    problem+json. (Errors in another shape, the Open Inference Protocol's, stay JSON.)"""
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                schema = str(content.get("application/json", {}).get("schema", {}))
                if str(status)[0] in "45" and "ProblemDetails" in schema:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return openapi

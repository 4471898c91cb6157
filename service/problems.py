"""One error shape everywhere: RFC 9457 problem details (`application/problem+json`)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

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


class Problem(Exception):
    """An error a client caused (or a 503); rendered as problem details.

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


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    metrics = getattr(request.app.state, "metrics", None)
    # Only refused predictions count as rejected inputs: a readiness probe answered 503 while
    # the model loads is not one.
    if metrics is not None and request.url.path.startswith("/predict"):
        metrics.rejected_inputs.labels(reason=exc.reason).inc()
    return problem_response(exc.to_body(request.url.path), exc.headers)


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
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.rejected_inputs.labels(reason="invalid_request").inc()
    body = problem_body(
        422,
        f"The request is invalid: {summary}" if summary else "The request is invalid.",
        request.url.path,
        type_=TYPE_PREFIX + "invalid_request",
        errors=errors,
    )
    return problem_response(body)


async def handle_unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware calls this, then re-raises so uvicorn logs the traceback.
    logger.error("unhandled error on %s %s: %r", request.method, request.url.path, exc)
    body = problem_body(
        500, "The server failed to handle the request; it has been logged.", request.url.path
    )
    return problem_response(body)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, handle_problem)
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
    """FastAPI documents every response as application/json; errors are problem+json."""
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if str(status)[0] in "45" and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return openapi

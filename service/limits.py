"""The request body's byte and time limits, enforced while the body streams in.

A declared Content-Length over the limit is refused before a byte is read; otherwise the bytes
are counted as they arrive and reading stops with 413 as soon as the count passes the limit.
A body that has not all arrived within the time limit (a slow client, or a Content-Length larger
than what is sent) ends with 408, so a connection is never held open by a body that never ends.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.metrics import Metrics
from service.problems import TYPE_PREFIX, problem_body, problem_response, record_rejection

# Room for the multipart boundaries and part headers around one file.
MULTIPART_ALLOWANCE = 64 * 1024
BODY_TOO_LARGE = "body_too_large"


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the limit of {limit} bytes.")
        self.limit = limit


def body_too_large_body(limit: int, instance: str) -> dict[str, object]:
    return problem_body(
        413,
        f"The request body is larger than the limit of {limit} bytes.",
        instance,
        type_=TYPE_PREFIX + BODY_TOO_LARGE,
        limit_bytes=limit,
    )


async def handle_body_too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    return problem_response(body_too_large_body(exc.limit, request.url.path))


class BodyTimeout(StarletteHTTPException):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"The request body did not arrive within {seconds:g} seconds.")
        self.seconds = seconds


async def handle_body_timeout(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTimeout)
    body = problem_body(
        408, str(exc.detail), request.url.path, type_=TYPE_PREFIX + "body_timeout",
        limit_seconds=exc.seconds,
    )
    # The rest of the body may still come: the connection cannot be reused.
    return problem_response(body, {"Connection": "close"})


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        default_limit: int,
        path_limits: Mapping[str, int] | None = None,
        pattern_limits: Sequence[tuple[re.Pattern[str], int]] = (),
        timeout_seconds: float = 60.0,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.default_limit = default_limit
        self.path_limits = dict(path_limits or {})
        self.timeout_seconds = timeout_seconds
        self.pattern_limits = list(pattern_limits)

    def limit_for(self, path: str) -> int:
        """The path's own limit, a matching pattern's, or the default."""
        if path in self.path_limits:
            return self.path_limits[path]
        return next((limit for pattern, limit in self.pattern_limits if pattern.match(path)),
                    self.default_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            record_rejection(self.metrics, scope["path"], BODY_TOO_LARGE)
            response = problem_response(body_too_large_body(limit, scope["path"]))
            # Close the connection: the client may still be sending the body we refuse.
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return

        received = 0
        body_done = False
        deadline = time.monotonic() + self.timeout_seconds

        async def receive_within_limit() -> Message:
            nonlocal received, body_done
            if body_done:  # later calls wait for a disconnect: no deadline on those
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                record_rejection(self.metrics, scope["path"], "body_timeout")
                raise BodyTimeout(self.timeout_seconds) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    record_rejection(self.metrics, scope["path"], BODY_TOO_LARGE)
                    raise BodyTooLarge(limit)
                body_done = not message.get("more_body", False)
            return message

        await self.app(scope, receive_within_limit, send)

"""Errors in the Open Inference Protocol's shape on its routes.

Everywhere else an error is RFC 9457 problem details; the protocol's clients (tritonclient,
KServe's) expect `{"error": "<message>"}` instead. The service decides every error once, in
service/problems.py (status, headers such as Retry-After, the rejected-inputs metric); this
middleware only re-spells the body of those answers on the protocol's paths, whatever raised them:
a route, a dependency (the API key), the body limit or the router (no such path).
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_MEDIA_TYPE = "application/problem+json"


def protocol_error(problem_json: bytes) -> bytes:
    try:
        problem = json.loads(problem_json)
        message = str(problem.get("detail") or problem.get("title") or "error")
    except (ValueError, AttributeError):
        message = problem_json.decode(errors="replace")
    return json.dumps({"error": message}).encode()


class ProtocolErrorShape:
    """Rewrites problem+json answers under `prefix` into the protocol's error object."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    def applies_to(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def send_in_protocol_shape(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = Headers(raw=message["headers"]).get("content-type", "")
                if content_type.startswith(PROBLEM_MEDIA_TYPE):
                    start = message  # held back until the whole problem body is here
                    return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = protocol_error(b"".join(chunks))
            headers = MutableHeaders(raw=list(start["headers"]))
            headers["content-type"] = "application/json"
            headers["content-length"] = str(len(body))
            await send({**start, "headers": headers.raw})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_in_protocol_shape)

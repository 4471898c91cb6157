"""The API key gate, checked before a byte of the body is read, and the security headers every
answer carries."""

from __future__ import annotations

import hmac

from pydantic import SecretStr
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import Unauthenticated
from service.metrics import Metrics
from service.problems import INFERENCE_PATH, problem_response, record_rejection, to_problem

API_KEY_HEADER = "X-API-Key"
PROTECTED_PATHS = frozenset({"/predict", "/predict/batch", "/convert", "/admin/reload"})


def is_protected(path: str) -> bool:
    """The routes that take uploads (or change the model): they need the key (when set) and
    their answers are never cached."""
    return path in PROTECTED_PATHS or INFERENCE_PATH.match(path) is not None

# HTML pages that set none of their own get the strictest policy.
DEFAULT_HTML_POLICY = (
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def api_key_matches(expected: SecretStr | None, provided: str | None) -> bool:
    """True when no key is configured or the provided one is it (constant-time comparison)."""
    if expected is None:
        return True
    return provided is not None and hmac.compare_digest(
        provided.encode(), expected.get_secret_value().encode()
    )


class ApiKeyMiddleware:
    """Refuses an upload request without the key from its headers alone, so an upload without
    a key is never received (the route's dependency documents the key in OpenAPI)."""

    def __init__(self, app: ASGIApp, api_key: SecretStr | None, metrics: Metrics) -> None:
        self.app = app
        self.api_key = api_key
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.api_key is not None
            and is_protected(scope["path"])
            and not api_key_matches(self.api_key, Headers(scope=scope).get(API_KEY_HEADER))
        ):
            problem = to_problem(Unauthenticated(API_KEY_HEADER), retry_after_seconds=0)
            record_rejection(self.metrics, scope["path"], problem.reason)
            # The client may still be sending the body we refuse: close the connection after.
            headers = {**problem.headers, "Connection": "close"}
            await problem_response(problem.to_body(scope["path"]), headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SecurityHeadersMiddleware:
    """`nosniff` on every answer, a CSP on HTML pages without one, `no-store` on the answers to
    uploads (predictions, conversions)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        uploads = is_protected(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers.setdefault("Referrer-Policy", "no-referrer")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", DEFAULT_HTML_POLICY)
                if uploads:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)

"""The HTTP server of `python -m service`: uvicorn with h11, plus the bounds uvicorn lacks.

uvicorn bounds neither the time a client may take to send its headers nor (with httptools)
their size, and its concurrency limit answers in plain text. The protocol here adds, per
connection: a header byte limit (431), a header time limit (408) and a connection limit (503 +
Retry-After), each answered as problem details and followed by closing the connection. The
server exits 0 after a clean drain on SIGTERM instead of re-raising the signal, and requests
still running when the grace period ends are answered 503 + Retry-After, not 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Generator
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import Any, ClassVar

import h11
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.config import Settings
from service.problems import TYPE_PREFIX, problem_body, problem_response
from service.runtime import Runtime

logger = logging.getLogger("service")

# Status of a process whose model could not be loaded (settings errors exit 2, like argparse).
EXIT_MODEL_NOT_LOADED = 3
# After a refusal, bytes still arriving are read and dropped this long before closing: closing
# a socket with unread data sends a reset, and the client would lose the answer (nginx's
# lingering close).
LINGER_SECONDS = 2.0


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    header_timeout_seconds: float
    max_connections: int
    retry_after_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            settings.max_header_bytes, settings.header_timeout_seconds,
            settings.max_connections, settings.retry_after_seconds,
        )


def raw_problem(status: int, reason: str, detail: str, headers: dict[str, str]) -> bytes:
    """A whole HTTP/1.1 problem-details answer, for refusals made before a request exists."""
    body = json.dumps(problem_body(status, detail, type_=TYPE_PREFIX + reason)).encode()
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "content-type: application/problem+json",
        f"content-length: {len(body)}",
        "connection: close",
        "x-content-type-options: nosniff",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class BoundedH11Protocol(H11Protocol):
    limits: ClassVar[ConnectionLimits]  # set by bounded_protocol()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timer: asyncio.TimerHandle | None = None
        self.full_app = self.app
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # lingering after a refusal: drop what still arrives
        if self.conn.their_state is h11.IDLE and self.headers_too_large(data):
            self.refuse(
                431, "headers_too_large",
                f"The request line and headers exceed {self.limits.max_header_bytes} bytes.",
            )
            return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self.disarm_header_timer()

    def handle_events(self) -> None:
        # uvicorn reads self.app when a request's headers are complete: over the limit, the
        # request goes to an app that answers 503 instead.
        crowded = (
            len(self.connections) > self.limits.max_connections
            or len(self.tasks) >= self.limits.max_connections
        )
        self.app = partial(over_capacity, self.limits.retry_after_seconds) if crowded else (
            self.full_app
        )
        super().handle_events()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.arm_header_timer()  # the next request on this connection gets the same time

    def headers_too_large(self, data: bytes) -> bool:
        pending = self.conn.trailing_data[0] + data
        end = pending.find(b"\r\n\r\n")
        return (end if end >= 0 else len(pending)) > self.limits.max_header_bytes

    def arm_header_timer(self) -> None:
        self.disarm_header_timer()
        self.header_timer = self.loop.call_later(
            self.limits.header_timeout_seconds, self.headers_too_slow
        )

    def disarm_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def headers_too_slow(self) -> None:
        self.header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            seconds = self.limits.header_timeout_seconds
            self.refuse(
                408, "header_timeout", f"The request headers did not arrive within {seconds:g} s."
            )

    def refuse(self, status: int, reason: str, detail: str) -> None:
        logger.warning("connection refused with %d: %s", status, detail)
        self.refused = True
        self.transport.write(raw_problem(status, reason, detail, {}))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def bounded_protocol(limits: ConnectionLimits) -> type[BoundedH11Protocol]:
    """The protocol class uvicorn instantiates per connection, with these limits."""
    return type("BoundedH11Protocol", (BoundedH11Protocol,), {"limits": limits})


async def over_capacity(retry_after: int, scope: Scope, receive: Receive, send: Send) -> None:
    body = problem_body(
        503, "The service has too many open connections; retry shortly.", scope.get("path"),
        type_=TYPE_PREFIX + "too_many_connections",
    )
    headers = {"Retry-After": str(retry_after), "Connection": "close"}
    await problem_response(body, headers)(scope, receive, send)


class GracePeriodEndMiddleware:
    """A request the server cancels when the shutdown grace period ends is answered 503 with
    Retry-After (the client may retry on another replica), with one log line, not a 500."""

    def __init__(self, app: ASGIApp, retry_after_seconds: int) -> None:
        self.app = app
        self.retry_after_seconds = retry_after_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if started or task is None:
                raise
            task.uncancel()
            logger.warning("request still running when the shutdown grace period ended: 503")
            body = problem_body(
                503, "The service is shutting down; retry shortly.", scope["path"],
                type_=TYPE_PREFIX + "shutting_down",
            )
            headers = {"Retry-After": str(self.retry_after_seconds), "Connection": "close"}
            await problem_response(body, headers)(scope, receive, send)


class DrainingServer(uvicorn.Server):
    """uvicorn re-raises the SIGTERM it handled once shutdown is done, so a clean drain ends with
    status -15; here a clean drain ends with `exit_code` (0 unless the model failed to load)."""

    exit_code = 0

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()

    def stop_if_model_fails(self, runtime: Runtime) -> None:
        """End the process with a one-line reason when loading the model fails."""

        def watch() -> None:
            while not runtime.wait_until_loaded(0.5):
                if self.should_exit:
                    return
            if runtime.runner is None:
                logger.critical("exiting: the model could not be loaded: %s", runtime.failure)
                self.exit_code = EXIT_MODEL_NOT_LOADED
                self.should_exit = True

        threading.Thread(target=watch, name="model-load-watch", daemon=True).start()


def serve(app: Any, settings: Settings, log_config: dict[str, Any]) -> int:
    """Run the server until SIGTERM/SIGINT (or a failed model load); return the exit status."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=bounded_protocol(ConnectionLimits.from_settings(settings)),
        # h11's own limit, a backstop behind the protocol's check.
        h11_max_incomplete_event_size=settings.max_header_bytes + 1024,
        log_level=settings.log_level,
        log_config=log_config,
        access_log=False,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_seconds),
        server_header=False,
    )
    server = DrainingServer(config)
    if settings.exit_on_load_failure:
        server.stop_if_model_fails(app.state.runtime)
    server.run()
    return server.exit_code

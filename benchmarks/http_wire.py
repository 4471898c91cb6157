"""The load generator's HTTP/1.1 connection: asyncio's transport and httptools' response parser.

The client shares two cores with the server it measures, and at concurrency 1 its CPU is spent
in series with every request: httpx costs the client several times the CPU per request of this
connection (docs/benchmarks.md, "The load client", measured with `python -m benchmarks.drive
--client httpx,wire`). A request is written as one buffer (head and body); the answer is parsed
by httptools, the C parser uvicorn uses, which handles chunked and length-delimited bodies
alike.

One connection carries one request at a time (the load client keeps one per worker). It opens
on first use and again after the server closed it or after a transport error, which is raised
as one of the classes below, named as httpx names them so the benchmarks' `transport:<name>`
outcomes read the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httptools


class TransportError(Exception):
    """The request got no complete HTTP answer."""


class ConnectError(TransportError):
    """The connection could not be opened."""


class RemoteProtocolError(TransportError):
    """The server closed the connection before its answer ended, or sent something that is
    not HTTP."""


class ReadTimeout(TransportError):
    """No complete answer within the timeout."""


@dataclass(frozen=True)
class WireResponse:
    status_code: int
    content: bytes


class Connection(Protocol):
    """What the load client needs of a connection (this module's, or benchmarks/
    httpx_connection.py's): one POST at a time, as an async context manager."""

    async def post(
        self, path: str, content: bytes, headers: Iterable[tuple[str, str]] = ()
    ) -> WireResponse: ...

    async def __aenter__(self) -> Connection: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


class _AnswerReader(asyncio.Protocol):
    """Feeds what arrives to httptools and settles the waiting request's future."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[WireResponse] | None = None
        self.closed = False
        self.keep_alive = True
        self._chunks: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(RemoteProtocolError(f"not an HTTP answer: {error}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(RemoteProtocolError("the server closed the connection mid-answer"))

    # httptools callbacks.

    def on_message_begin(self) -> None:
        self._chunks = []

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        answer = WireResponse(self.parser.get_status_code(), b"".join(self._chunks))
        self._chunks = []
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(answer)

    def _fail(self, error: TransportError) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)


class WireConnection:
    """One keep-alive connection to `base_url` (http://host:port), one request at a time."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"expected http://host:port, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self._reader: _AnswerReader | None = None

    async def post(
        self, path: str, content: bytes, headers: Iterable[tuple[str, str]] = ()
    ) -> WireResponse:
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                f"Content-Length: {len(content)}"]
        head += [f"{name}: {value}" for name, value in headers]
        return await self.send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + content)

    async def send(self, request: bytes) -> WireResponse:
        """Write one whole request and wait for its answer."""
        reader = await self._connection()
        loop = asyncio.get_running_loop()
        reader.waiter = waiter = loop.create_future()
        timer = loop.call_later(self.timeout, self._time_out, waiter)
        assert reader.transport is not None  # set by connection_made
        reader.transport.write(request)
        try:
            answer: WireResponse = await waiter
        except TransportError:
            self.close()
            raise
        finally:
            timer.cancel()
        if not reader.keep_alive:
            self.close()
        return answer

    def _time_out(self, waiter: asyncio.Future[WireResponse]) -> None:
        if not waiter.done():
            waiter.set_exception(ReadTimeout(f"no answer within {self.timeout} s"))

    async def _connection(self) -> _AnswerReader:
        if self._reader is not None and not self._reader.closed:
            return self._reader
        loop = asyncio.get_running_loop()
        try:
            _, reader = await asyncio.wait_for(
                loop.create_connection(_AnswerReader, self.host, self.port), self.timeout
            )
        except (TimeoutError, OSError) as error:
            raise ConnectError(f"cannot connect to {self.host}:{self.port}: {error!r}") from None
        self._reader = reader
        return reader

    def close(self) -> None:
        if self._reader is not None and self._reader.transport is not None:
            self._reader.transport.close()
        self._reader = None

    async def __aenter__(self) -> WireConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

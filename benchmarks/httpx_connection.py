"""The load client's connection through httpx instead of benchmarks/http_wire.py: what the
benchmarks used before, kept to measure what the client itself costs
(`python -m benchmarks.drive --client httpx,wire`). Its transport errors are raised as
http_wire's classes, so outcomes are named alike."""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from benchmarks.http_wire import ConnectError, ReadTimeout, RemoteProtocolError, WireResponse


class HttpxConnection:
    """One httpx client holding one connection, one request at a time."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url, limits=httpx.Limits(max_connections=1), timeout=timeout
        )

    async def post(
        self, path: str, content: bytes, headers: Iterable[tuple[str, str]] = ()
    ) -> WireResponse:
        try:
            response = await self._client.post(path, content=content, headers=list(headers))
        except httpx.ConnectError as error:
            raise ConnectError(str(error)) from None
        except httpx.TimeoutException as error:
            raise ReadTimeout(str(error)) from None
        except httpx.TransportError as error:
            raise RemoteProtocolError(f"{type(error).__name__}: {error}") from None
        return WireResponse(response.status_code, response.content)

    async def __aenter__(self) -> HttpxConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.aclose()

"""The load client's connection (benchmarks/http_wire.py) against a scripted server on
127.0.0.1: what it writes, the answers it reads (length-delimited and chunked), keep-alive and
reconnection, and the transport errors it raises."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import h11
import pytest

from benchmarks.http_wire import ConnectError, ReadTimeout, RemoteProtocolError, WireConnection
from benchmarks.httpx_connection import HttpxConnection
from benchmarks.load import Connect

# Both load clients (benchmarks.drive --client) must read answers and name failures alike.
CLIENTS = pytest.mark.parametrize("connect", [WireConnection, HttpxConnection],
                                  ids=["wire", "httpx"])

# One reply per request: raw bytes to write, and whether to close the connection after them.
Reply = Callable[[h11.Request, bytes], tuple[bytes, bool]]


def length_reply(body: bytes, *extra: bytes) -> tuple[bytes, bool]:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body) + b"".join(extra)
    return head + b"\r\n" + body, False


async def serve(reply: Reply) -> tuple[asyncio.Server, list[int], list[tuple[h11.Request, bytes]]]:
    """A server answering each request with `reply`; it records the connections it accepted
    and each request (head and body) as h11 parsed it."""
    connections: list[int] = []
    seen: list[tuple[h11.Request, bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        parser = h11.Connection(h11.SERVER)
        request, body = None, b""
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data:
                    break
                parser.receive_data(data)
            elif isinstance(event, h11.Request):
                request, body = event, b""
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                seen.append((request, body))
                answer, close = reply(request, body)
                writer.write(answer)
                await writer.drain()
                if close:
                    break
                parser = h11.Connection(h11.SERVER)  # raw replies: start afresh per request
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, connections, seen


def url(server: asyncio.Server) -> str:
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 20))


@CLIENTS
def test_a_request_is_written_whole_and_answers_share_one_connection(connect: Connect) -> None:
    async def scenario() -> None:
        server, connections, seen = await serve(lambda request, body: length_reply(body[::-1]))
        async with server, connect(url(server), 5) as connection:
            first = await connection.post("/predict", b"abc", (("Content-Type", "image/png"),
                                                              ("Accept", "image/png")))
            second = await connection.post("/predict/raw", b"\x00" * 100_000)
        assert (first.status_code, first.content) == (200, b"cba")
        assert second.content == b"\x00" * 100_000
        assert len(connections) == 1
        request, body = seen[0]
        assert (request.method, request.target, body) == (b"POST", b"/predict", b"abc")
        headers = dict(request.headers)
        assert headers[b"content-type"] == b"image/png"
        assert headers[b"accept"] == b"image/png"
        assert headers[b"host"].startswith(b"127.0.0.1:")
        assert seen[1][0].target == b"/predict/raw"

    run(scenario)


@CLIENTS
def test_a_chunked_answer_is_put_together(connect: Connect) -> None:
    chunked = (b"HTTP/1.1 422 Unprocessable Content\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")

    async def scenario() -> None:
        server, connections, _ = await serve(lambda request, body: (chunked, False))
        async with server, connect(url(server), 5) as connection:
            for _ in range(2):
                answer = await connection.post("/predict", b"x")
                assert (answer.status_code, answer.content) == (422, b"hello world")
        assert len(connections) == 1

    run(scenario)


def test_connection_close_is_honoured_and_the_next_request_reconnects() -> None:
    async def scenario() -> None:
        server, connections, _ = await serve(
            lambda request, body: (length_reply(b"ok", b"Connection: close\r\n")[0], True))
        async with server, WireConnection(url(server), timeout=5) as connection:
            for _ in range(3):
                assert (await connection.post("/predict", b"x")).content == b"ok"
        assert len(connections) == 3

    run(scenario)


@CLIENTS
def test_an_answer_cut_off_is_a_protocol_error_and_the_next_request_reconnects(
    connect: Connect,
) -> None:
    async def scenario() -> None:
        cut_off = iter([True, False])

        def reply(request: h11.Request, body: bytes) -> tuple[bytes, bool]:
            if next(cut_off):  # three of ten bytes, then the connection closes
                return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", True
            return length_reply(b"ok")

        server, connections, _ = await serve(reply)
        async with server, connect(url(server), 5) as connection:
            with pytest.raises(RemoteProtocolError):
                await connection.post("/predict", b"x")
            assert (await connection.post("/predict", b"x")).content == b"ok"
        assert len(connections) == 2

    run(scenario)


def test_bytes_that_are_not_http_are_a_protocol_error() -> None:
    async def scenario() -> None:
        server, _, _ = await serve(lambda request, body: (b"SSH-2.0-OpenSSH\r\n\r\n", False))
        async with server, WireConnection(url(server), timeout=5) as connection:
            with pytest.raises(RemoteProtocolError):
                await connection.post("/predict", b"x")

    run(scenario)


@CLIENTS
def test_no_answer_in_time_is_a_read_timeout(connect: Connect) -> None:
    async def scenario() -> None:
        server, _, _ = await serve(lambda request, body: (b"", False))  # silent, kept open
        async with server, connect(url(server), 0.2) as connection:
            with pytest.raises(ReadTimeout):
                await connection.post("/predict", b"x")

    run(scenario)


@CLIENTS
def test_nothing_listening_is_a_connect_error(connect: Connect) -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        address = url(server)
        server.close()
        await server.wait_closed()
        async with connect(address, 2) as connection:
            with pytest.raises(ConnectError):
                await connection.post("/predict", b"x")

    run(scenario)


def test_only_plain_http_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="http://host:port"):
        WireConnection("https://127.0.0.1:8443", timeout=1)

"""The bounds at the edge of a real server process (tests/e2e/conftest.py: small limits, an API
key, JSON logs): header size and time, body time, connections, the API key before the body,
request IDs in answers and logs, security headers. Raw sockets where a client must misbehave."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from server_process import EDGE_API_KEY, RunningServer, read_answer

pytestmark = pytest.mark.e2e

KEY = {"X-API-Key": EDGE_API_KEY}


def connect(server: RunningServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.settimeout(20)
    return sock


def send_ignoring_reset(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server refused and closed while we were still sending


def test_a_header_flood_is_cut_off_with_431(edge_server: RunningServer) -> None:
    with connect(edge_server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        for _ in range(64):  # 64 x 1 KiB of header lines that never end
            send_ignoring_reset(sock, b"X-Flood: " + b"a" * 1014 + b"\r\n")
        status, headers, body = read_answer(sock)
    assert status == 431 and headers["connection"] == "close"
    assert body["type"].endswith(":headers_too_large") and "8192 bytes" in body["detail"]


def test_a_complete_oversized_header_in_one_write_gets_431(edge_server: RunningServer) -> None:
    with connect(edge_server) as sock:
        send_ignoring_reset(
            sock, b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 60_000 + b"\r\n\r\n"
        )
        status, _, body = read_answer(sock)
    assert status == 431 and body["status"] == 431


def test_headers_that_never_end_get_408_and_a_closed_connection(
    edge_server: RunningServer,
) -> None:
    with connect(edge_server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        status, headers, body = read_answer(sock)
    assert status == 408 and headers["connection"] == "close"
    assert body["type"].endswith(":header_timeout")


def test_a_body_shorter_than_its_content_length_gets_408(edge_server: RunningServer) -> None:
    with connect(edge_server) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nX-API-Key: " + EDGE_API_KEY.encode()
            + b"\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 5000\r\n\r\n--b\r\n"
        )
        status, headers, body = read_answer(sock)
    assert status == 408 and headers["connection"] == "close"
    assert body["type"].endswith(":body_timeout") and body["instance"] == "/predict"


def test_an_upload_without_the_key_is_refused_before_its_body(
    edge_server: RunningServer,
) -> None:
    with connect(edge_server) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 62914560\r\n\r\n"
        )  # 60 MB declared, not one byte sent: the 401 comes from the headers alone
        status, headers, body = read_answer(sock)
    assert status == 401 and headers["www-authenticate"].startswith("ApiKey")
    assert body["type"].endswith(":unauthorized")


@pytest.fixture
def held_connections(edge_server: RunningServer) -> Iterator[list[socket.socket]]:
    """4 (the limit) requests in progress, each waiting for a body that does not come."""
    with ExitStack() as stack:
        held = [stack.enter_context(connect(edge_server)) for _ in range(4)]
        for sock in held:
            sock.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nX-API-Key: " + EDGE_API_KEY.encode()
                + b"\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 99\r\n\r\n"
            )
        time.sleep(0.5)  # let the server start reading them
        yield held


def test_beyond_the_connection_limit_requests_get_503_until_room_is_made(
    edge_server: RunningServer, held_connections: list[socket.socket]
) -> None:
    crowded = httpx.get(f"{edge_server.url}/health/live", timeout=10)
    assert crowded.status_code == 503
    assert crowded.headers["retry-after"] == "2"
    assert crowded.json()["type"].endswith(":too_many_connections")
    for sock in held_connections:  # each ends with the body timeout
        assert read_answer(sock)[0] == 408
    assert httpx.get(f"{edge_server.url}/health/live", timeout=10).status_code == 200


def test_request_ids_are_echoed_in_headers_bodies_and_json_logs(
    edge_server: RunningServer, sample_images: dict[str, bytes]
) -> None:
    mine = "req-7f3a.b:42"
    refused = httpx.post(
        f"{edge_server.url}/predict", headers={**KEY, "X-Request-ID": mine},
        files={"file": ("patient-jane-doe.png", b"not an image")},
    )
    assert refused.status_code == 415
    assert refused.headers["x-request-id"] == mine and refused.json()["request_id"] == mine
    made = httpx.get(f"{edge_server.url}/health/live", headers={"X-Request-ID": "bad id\t!"})
    assert made.headers["x-request-id"] not in {"", "bad id\t!"}
    answered = httpx.post(
        f"{edge_server.url}/predict", headers=KEY,
        files={"file": ("patient-jane-doe.png", sample_images["png_L"])},
    )
    assert answered.status_code == 200 and answered.headers["cache-control"] == "no-store"

    text = edge_server.log_text()
    assert "patient-jane-doe" not in text
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    mine_records = [r for r in records if r.get("request_id") == mine]
    assert [r["status"] for r in mine_records if r["logger"] == "service.requests"] == [415]
    line = next(r for r in records if r.get("request_id") == answered.headers["x-request-id"])
    assert line["route"] == "/predict" and line["status"] == 200
    assert line["model_version"] == 1 and line["latency_ms"] >= 0
    assert {"time", "level", "message"} <= set(line)


def test_security_headers_on_every_answer(edge_server: RunningServer) -> None:
    for path in ("/", "/docs", "/health/live", "/openapi.json", "/static/style.css", "/nowhere"):
        response = httpx.get(edge_server.url + path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        if response.headers["content-type"].startswith("text/html"):
            assert "default-src" in response.headers["content-security-policy"], path

"""End to end: a real `python -m service` process on 127.0.0.1, driven over HTTP by httpx."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_process import free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
MAX_UPLOAD_BYTES = 200_000
IMAGES = ["png_L", "png_RGB", "jpeg_L", "jpeg_RGB", "tiff_I16", "gif_P", "webp_RGB", "png_P"]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    startup: list[tuple[int | None, int | None]]  # (live, ready) status per poll; None = refused
    ready_after: float
    log: Path


@pytest.fixture(scope="module")
def server(exported_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("e2e") / "server.log"
    env = {
        **os.environ,
        "MRI_LOG_LEVEL": "info",
        "MRI_ACCESS_LOG": "false",
        "MRI_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
        "MRI_MAX_WAIT_MS": "5",
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port),
               "--model-dir", str(exported_model_dir)]
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
        startup: list[tuple[int | None, int | None]] = []
        try:
            with httpx.Client(timeout=2) as client:
                while time.monotonic() - started < 90:
                    assert process.poll() is None, log.read_text()
                    try:
                        live = client.get(f"{url}/health/live").status_code
                        ready = client.get(f"{url}/health/ready").status_code
                    except httpx.TransportError:
                        live = ready = None
                    startup.append((live, ready))
                    if ready == 200:
                        break
                    time.sleep(0.02)
            assert startup and startup[-1][1] == 200, log.read_text()
            yield Server(url, process, startup, time.monotonic() - started, log)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
    assert code == 0, log.read_text()  # a clean drain exits 0
    assert "Application shutdown complete" in log.read_text()


def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_readiness_goes_from_503_to_200(server: Server) -> None:
    answered = [(live, ready) for live, ready in server.startup if ready is not None]
    assert answered[-1] == (200, 200)
    not_ready = [pair for pair in answered if pair[1] == 503]
    assert not_ready, f"never saw 503 before ready: {server.startup}"
    assert all(live == 200 for live, _ in answered)  # live all along
    first_200 = next(i for i, (_, ready) in enumerate(answered) if ready == 200)
    assert all(ready == 503 for _, ready in answered[:first_200])
    assert server.ready_after < 60
    body = httpx.get(f"{server.url}/health/ready").json()
    assert body == {"status": "ready", "model": {"name": "test-model", "version": 1},
                    "input_gate": "enforce"}
    assert "loaded from" in server.log.read_text()


def test_concurrent_predictions_match_single_answers_and_metrics(
    server: Server, sample_images: dict[str, bytes]
) -> None:
    url = server.url
    alone: dict[str, dict[str, Any]] = {}
    with httpx.Client(timeout=30) as client:
        for name in IMAGES:
            response = client.post(f"{url}/predict", files={"file": (name, sample_images[name])})
            assert response.status_code == 200, response.text
            alone[name] = response.json()
    probabilities = sorted(answer["tumor_probability"] for answer in alone.values())
    gaps = [b - a for a, b in zip(probabilities, probabilities[1:], strict=False)]
    assert min(gaps) > 1e-4, "the images must differ, or a mix-up would go unseen"

    before = metrics(url)
    order = [IMAGES[i % len(IMAGES)] for i in range(200)]

    async def drive() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            return await asyncio.gather(*(
                client.post(f"{url}/predict", files={"file": (name, sample_images[name])})
                for name in order
            ))

    responses = asyncio.run(drive())
    after = metrics(url)

    for name, response in zip(order, responses, strict=True):
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["tumor_probability"] == pytest.approx(
            alone[name]["tumor_probability"], abs=1e-5
        ), name
        assert answer["label"] == alone[name]["label"]

    def delta(metric: str, **labels: str) -> float:
        key = (metric, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("mri_http_requests_total", route="/predict", method="POST", status="200") == 200
    assert delta("mri_http_requests_total", route="/metrics", method="GET", status="200") == 1
    expected_labels = [alone[name]["label"] for name in order]
    for label in ("tumor", "healthy"):
        assert delta("mri_predictions_total", label=label) == expected_labels.count(label)
    assert delta("mri_batch_size_sum") == 200
    assert delta("mri_queue_wait_seconds_count") == 200
    model_calls = delta("mri_batch_size_count")
    assert model_calls < 200, "concurrent requests should share model calls"
    assert delta("mri_model_inference_seconds_count") == model_calls
    assert delta("mri_http_request_duration_seconds_count", route="/predict", method="POST") == 200


def test_batch_route_over_http(server: Server, sample_images: dict[str, bytes]) -> None:
    files = [("files", (name, sample_images[name])) for name in IMAGES]
    files.insert(3, ("files", ("bad.txt", b"not an image")))
    response = httpx.post(f"{server.url}/predict/batch", files=files, timeout=30)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["filename"] for r in results] == [*IMAGES[:3], "bad.txt", *IMAGES[3:]]
    assert results[3]["error"]["status"] == 415


def read_response(sock: socket.socket) -> tuple[int, str]:
    """Status and text of one HTTP/1.1 response with a Content-Length."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(head.split(b" ", 2)[1]), (head + b"\r\n\r\n" + body).decode("latin-1")


def test_declared_oversized_body_is_refused_before_it_is_sent(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )  # and not one byte of the gigabyte
        status, text = read_response(sock)
    assert status == 413
    assert "application/problem+json" in text


def test_streamed_oversized_body_is_cut_off_while_streaming(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    part = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + b"\x89PNG" + b"\0" * (MAX_UPLOAD_BYTES + 70_000))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + f"{len(part):x}\r\n".encode() + part + b"\r\n"
        )  # the body never ends: a 413 now proves the count ran while streaming
        status, text = read_response(sock)
    assert status == 413
    assert f"limit of {MAX_UPLOAD_BYTES + 64 * 1024} bytes" in text

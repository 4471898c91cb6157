"""The edge, in process: request IDs, security headers, the API key before the body, the body
time limit, one `file` per /predict, the docs page's assets and the metrics' route labels."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from service_helpers import assert_problem

from service.limits import BodyLimitMiddleware, BodyTimeout
from service.metrics import Metrics
from service.routes.ui import STATIC_DIR


def test_request_id_is_taken_or_made_and_echoed(client: TestClient) -> None:
    sent = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert sent.headers["x-request-id"] == "abc-123"
    made = client.get("/health/live")
    other = client.get("/health/live", headers={"X-Request-ID": "spaces are not ok"})
    assert len({made.headers["x-request-id"], other.headers["x-request-id"]}) == 2
    assert other.headers["x-request-id"] != "spaces are not ok"


def test_problem_bodies_carry_the_request_id(client: TestClient) -> None:
    response = client.get("/nowhere", headers={"X-Request-ID": "r-404"})
    assert assert_problem(response, 404)["request_id"] == "r-404"


def test_even_a_500_carries_the_request_id_and_nosniff(make_client: Any) -> None:
    def add_failing_route(app: FastAPI) -> None:
        async def boom() -> None:
            raise RuntimeError("boom")

        app.add_api_route("/boom", boom)

    with make_client(raise_server_exceptions=False, app_hook=add_failing_route) as client:
        response = client.get("/boom", headers={"X-Request-ID": "r-500"})
        assert assert_problem(response, 500)["request_id"] == "r-500"
        assert response.headers["x-request-id"] == "r-500"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_security_headers(client: TestClient, png: bytes) -> None:
    for path in ("/", "/docs", "/health/live", "/static/style.css", "/openapi.json"):
        assert client.get(path).headers["x-content-type-options"] == "nosniff", path
    for path in ("/", "/docs"):
        policy = client.get(path).headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    prediction = client.post("/predict", files={"file": ("a.png", png)})
    assert prediction.status_code == 200 and prediction.headers["cache-control"] == "no-store"
    refused = client.post("/predict", files={"file": ("a.png", b"no")})
    assert refused.headers["cache-control"] == "no-store"


def test_the_key_is_checked_before_the_body_limit(make_client: Any) -> None:
    # A body far over the limit without the key: 401 (the headers decide), not 413.
    with make_client(api_key="k", max_upload_bytes=100) as client:
        response = client.post("/predict", files={"file": ("a", b"\0" * 300_000)})
        assert_problem(response, 401)
        assert response.headers["connection"] == "close"
        with_key = client.post(
            "/predict", files={"file": ("a", b"\0" * 300_000)}, headers={"X-API-Key": "k"}
        )
        assert_problem(with_key, 413)


def test_two_file_parts_on_predict_are_refused(client: TestClient, png: bytes) -> None:
    response = client.post(
        "/predict", files=[("file", ("a.png", png)), ("file", ("b.png", b"not an image"))]
    )
    body = assert_problem(response, 422, "send exactly one")
    assert body["type"].endswith(":several_files")


def test_a_body_that_stops_arriving_ends_with_408() -> None:
    async def never_ending_body() -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    middleware = BodyLimitMiddleware(app, Metrics(), 1000, timeout_seconds=0.05)
    scope = {"type": "http", "path": "/predict", "headers": []}

    async def run() -> None:
        try:
            await middleware(scope, never_ending_body, lambda message: asyncio.sleep(0))
        except BodyTimeout as timeout:
            assert timeout.status_code == 408
        else:
            raise AssertionError("no timeout")

    asyncio.run(run())


def test_the_docs_page_uses_only_vendored_pinned_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # no outside URL at all
    vendored = STATIC_DIR / "swagger-ui"
    for line in (vendored / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((vendored / name).read_bytes()).hexdigest() == digest, name
        assert client.get(f"/static/swagger-ui/{name}").status_code == 200
    assert "5.35.0" in (vendored / "README.md").read_text()
    assert Path(vendored / "LICENSE").read_text().lstrip().startswith("Apache License")


def test_metrics_label_docs_and_static_files_by_route(client: TestClient) -> None:
    for path in ("/docs", "/static/style.css", "/openapi.json", "/nowhere"):
        client.get(path)
    text = client.get("/metrics").text
    routes = {
        sample.labels["route"]
        for family in text_string_to_metric_families(text) for sample in family.samples
        if sample.name == "mri_http_requests_total"
    }
    assert {"/docs", "/static", "/openapi.json", "<unmatched>"} <= routes

"""Every error is problem+json: unknown routes, wrong methods, server faults; CORS is opt-in."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from service_helpers import assert_problem


def test_unknown_route_is_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/does-not-exist"), 404, "/does-not-exist")
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"
    assert body["instance"] == "/does-not-exist"
    assert_problem(client.get("/static/missing.js"), 404)


def test_wrong_method_is_405_problem_with_allow(client: TestClient) -> None:
    response = client.get("/predict")
    body = assert_problem(response, 405, "GET is not allowed on /predict")
    assert response.headers["allow"] == "POST"
    assert body["title"] == "Method Not Allowed"
    assert_problem(client.post("/health/ready"), 405)


def test_unexpected_server_error_is_500_problem(make_client: Any) -> None:
    def add_failing_route(app: FastAPI) -> None:
        async def boom() -> None:
            raise RuntimeError("secret internal detail")

        app.add_api_route("/boom", boom)

    with make_client(raise_server_exceptions=False, app_hook=add_failing_route) as client:
        body = assert_problem(client.get("/boom"), 500, "failed")
        assert "secret internal detail" not in body["detail"]
        assert body["title"] == "Internal Server Error"


def test_cors_is_off_by_default(client: TestClient) -> None:
    response = client.get("/health/live", headers={"Origin": "https://example.org"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_configured_origins_only(make_client: Any) -> None:
    with make_client(cors_origins="https://a.example, https://b.example") as client:
        allowed = client.options("/predict", headers={
            "Origin": "https://b.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key",
        })
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://b.example"
        other = client.get("/health/live", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers

"""Helpers for the service tests (a module of its own: conftest modules are not importable)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def assert_problem(response: Any, status: int, detail_contains: str = "") -> dict[str, Any]:
    """The response is RFC 9457 problem details with this status; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert detail_contains in body["detail"], body["detail"]
    return body


def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(metrics: dict[Any, float], metric: str, **labels: str) -> float:
    return metrics.get((metric, tuple(sorted(labels.items()))), 0.0)

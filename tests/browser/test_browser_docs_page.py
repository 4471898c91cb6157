"""The Swagger UI page (/docs) in headless Chromium with the network blocked: every asset comes
from the service, the page's CSP holds (no violation), and every operation is rendered."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser


def test_docs_render_every_operation_offline(offline_page: Any, server_url: str) -> None:
    page = offline_page
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))

    page.goto(server_url + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)

    openapi = httpx.get(f"{server_url}/openapi.json").json()
    operations = {
        (method.upper(), path) for path, item in openapi["paths"].items() for method in item
    }
    rendered = {
        (
            (block.query_selector(".opblock-summary-method").inner_text().strip()),
            (block.query_selector(".opblock-summary-path").get_attribute("data-path")),
        )
        for block in page.query_selector_all(".opblock")
    }
    assert rendered == operations
    assert page.inner_text(".info .title").startswith("Brain MRI tumor classifier")
    assert page.blocked_requests == [] and failed == []  # nothing wanted outside the server
    assert not [line for line in console if "Content Security Policy" in line], console

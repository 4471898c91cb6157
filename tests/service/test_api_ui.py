"""GET /: the upload page and its static files (the browser test drives it for real)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_upload_page_is_served(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page = response.text
    assert '<input id="file" name="file" type="file"' in page
    assert '<script src="/static/upload.js"' in page
    for element in ('id="label"', 'id="probability"', 'id="model"'):
        assert element in page


def test_static_files_are_served(client: TestClient) -> None:
    script = client.get("/static/upload.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert 'fetch("/predict"' in script.text
    assert "tumor_probability" in script.text
    assert client.get("/static/style.css").status_code == 200

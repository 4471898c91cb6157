"""GET /: the upload page and its static files (the browser tests drive them for real)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from service.heatmaps import colour_table

SCRIPTS = ["api", "csv", "heatmap", "rows", "table", "thumbnails", "upload", "viewer", "words"]


def test_upload_page_is_served(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    page = response.text
    assert '<input id="files" name="files" type="file" multiple' in page
    assert '<script type="module" src="/static/js/upload.js"></script>' in page
    for element in ('id="results-table"', 'id="export-csv"', 'id="progress"', 'id="overlay"',
                    'id="opacity"', 'id="operating-point-text"', 'id="drop-zone"'):
        assert element in page
    assert "<script>" not in page and "style=" not in page  # nothing inline: the CSP forbids it
    assert "not a diagnostic device" in page


def test_upload_page_carries_the_batch_limit_and_the_operating_point(
    make_client: Any,
) -> None:
    with make_client(max_batch_files=7, operating_point='bal"anced<') as client:
        page = client.get("/").text
    assert '<meta name="max-batch-files" content="7">' in page
    assert '<meta name="operating-point" content="bal&quot;anced&lt;">' in page  # escaped
    assert "__MAX_BATCH_FILES__" not in page and "__OPERATING_POINT__" not in page


def test_static_files_are_served(client: TestClient) -> None:
    for name in SCRIPTS:
        script = client.get(f"/static/js/{name}.js")
        assert script.status_code == 200, name
        assert "javascript" in script.headers["content-type"]
    assert '"/predict/batch"' in client.get("/static/js/api.js").text
    assert 'postFile("/explain"' in client.get("/static/js/viewer.js").text
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/card.css").status_code == 200


def test_the_page_never_says_healthy_as_a_verdict(client: TestClient) -> None:
    """The model can only say "no tumor flagged"; the words module has no "healthy" verdict."""
    words = client.get("/static/js/words.js").text
    assert "no ${positive} flagged" in words and "not a brain MRI slice: not classified" in words
    assert '"healthy"' not in words


def test_heatmap_colours_are_the_overlay_colour_map(client: TestClient) -> None:
    response = client.get("/ui/heatmap-colours.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    colours = Image.open(io.BytesIO(response.content))
    assert colours.size == (256, 1) and colours.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(colours)[0], colour_table())
    # A perceptual map: brightness rises with the heat level, from near black to near white
    # (luma of the sRGB values, which wobbles by under one level where inferno turns red).
    brightness = colour_table().astype(float) @ [0.2126, 0.7152, 0.0722]
    assert np.diff(brightness).min() > -1.0
    assert brightness[0] < 10 and brightness[-1] > 230

"""GET /: the upload page and its static files (the browser test drives it for real)."""

from __future__ import annotations

import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from service.heatmaps import colour_table


def test_upload_page_is_served(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page = response.text
    assert '<input id="file" name="file" type="file"' in page
    assert '<script src="/static/upload.js"' in page
    for element in ('id="label"', 'id="probability"', 'id="model"', 'id="overlay"',
                    'id="opacity"'):
        assert element in page


def test_static_files_are_served(client: TestClient) -> None:
    script = client.get("/static/upload.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert 'post("/explain"' in script.text and 'post("/predict"' in script.text
    assert "tumor_probability" in script.text
    assert client.get("/static/style.css").status_code == 200


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

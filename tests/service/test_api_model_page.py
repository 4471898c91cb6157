"""GET /model for a browser: the model card as an HTML page (content negotiation on Accept;
JSON stays the default), every card value escaped, plots served only from the model folder."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from service_helpers import assert_problem

from service.routes.model import prefers_html

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(("accept", "html"), [
    (BROWSER_ACCEPT, True),
    ("text/html", True),
    ("text/*, application/json;q=0.5", True),
    (None, False),
    ("*/*", False),
    ("application/json", False),
    ("application/json, text/html", False),  # a tie goes to JSON
    ("text/html;q=0.5, */*", False),
    ("text/html;q=oops, application/json;q=0.1", False),
])
def test_html_only_when_the_client_prefers_it(accept: str | None, html: bool) -> None:
    assert prefers_html(accept) is html


def test_json_stays_the_default(client: TestClient) -> None:
    for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/json"}):
        response = client.get("/model", headers=headers)
        assert response.headers["content-type"] == "application/json"
        assert response.headers["vary"] == "Accept"
        assert response.json()["name"] == "test-model"


def test_a_browser_gets_the_card_as_a_page(client: TestClient) -> None:
    response = client.get("/model", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["vary"] == "Accept"
    page = response.text
    assert "<title>Model card: test-model version 1</title>" in page
    assert "<script" not in page and "style=" not in page
    for heading in ("Intended use and limits", "Operating point", "Test metrics", "Plots",
                    "Training data and procedure", "Input gate", "Version and fingerprint"):
        assert f">{heading}</h2>" in page
    assert "This model's folder ships no plots." in page
    assert "SavedModel fingerprint" in page and "not available" not in page


def test_the_page_when_not_ready_is_503(make_client: Any, tmp_path: Path) -> None:
    with make_client(model_dir=tmp_path) as client:
        assert_problem(client.get("/model", headers={"Accept": "text/html"}), 503, "not ready")


def hostile_model(exported_version_dir: Path, folder: Path) -> Path:
    """A copy of the test model whose card holds markup and points at plots in and out of
    its folder."""
    version_dir = folder / "test-model" / "1"
    shutil.copytree(exported_version_dir, version_dir)
    card_path = version_dir / "assets" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["intended_use"] = "<script>alert(1)</script> & <b>bold</b>"
    card["plots"] = {"ROC <curve>": "assets/roc.png", "outside": "../../../secret.png",
                     "missing": "assets/nothing.png"}
    card_path.write_text(json.dumps(card))
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, "PNG")
    (version_dir / "assets" / "roc.png").write_bytes(buffer.getvalue())
    (folder / "secret.png").write_bytes(buffer.getvalue())
    return folder


def test_card_values_are_escaped_and_plots_stay_in_the_model_folder(
    make_client: Any, exported_version_dir: Path, tmp_path: Path
) -> None:
    models = hostile_model(exported_version_dir, tmp_path / "models")
    with make_client(model_dir=models) as client:
        page = client.get("/model", headers={"Accept": "text/html"}).text
        plot = client.get("/model/plots/ROC <curve>")
        outside = client.get("/model/plots/outside")
        missing = client.get("/model/plots/missing")
    assert "<script>alert(1)</script>" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert 'src="/model/plots/ROC &lt;curve&gt;"' in page
    assert "/model/plots/outside" not in page and "/model/plots/missing" not in page
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert_problem(outside, 404, "no plot 'outside'")
    assert_problem(missing, 404, "no plot 'missing'")

"""The model card as a page (GET /model from a browser) and the upload page's plain words
for the operating point, computed from whichever card the service serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from accessibility import serious_violations

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
SHIPPED_CARD = REPO / "models" / "brain-tumor-cnn" / "1" / "assets" / "model_card.json"


def test_the_model_card_is_a_page_in_a_browser(
    offline_page: Any, server_url: str, artefacts: Path, axe_source: str
) -> None:
    page = offline_page
    page.goto(server_url + "/")
    page.click("a[href='/model']")
    page.wait_for_selector("h1")
    assert page.title() == "Model card: test-model version 1"
    headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
    assert headings == ["Intended use and limits", "Operating point", "Test metrics", "Plots",
                        "Training data and procedure", "Input gate", "Explanations",
                        "Version and fingerprint"]
    text = page.inner_text("main")
    assert "Tests only." in text  # the test card's intended use
    assert "This card holds no test metrics." in text
    assert "This model's folder ships no plots." in text
    assert "mahalanobis-multilayer+colour" in text  # the test model's gate
    page.screenshot(path=str(artefacts / "model-card.png"), full_page=True)
    assert serious_violations(page, axe_source) == []
    assert page.blocked_requests == []


def serve_card(page: Any, server_url: str, card: dict[str, Any]) -> None:
    """Answer the page's GET /model with `card` (the browser asks for JSON)."""
    page.route(server_url + "/model", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(card)))


def test_the_operating_point_in_plain_words_from_the_shipped_card(
    page: Any, server_url: str, artefacts: Path
) -> None:
    card = json.loads(SHIPPED_CARD.read_text())
    serve_card(page, server_url, card)
    page.goto(server_url + "/")
    page.wait_for_function(
        "() => !document.getElementById('operating-point-text').textContent.includes('Reading')")
    words = page.text_content("#operating-point-text")
    # recall 0.898 (0.864 to 0.931), specificity 0.957 (0.933 to 0.980) on the test split
    assert words == (
        "At the model's operating point: P(tumor) at or above 0.861 is flagged. On the test "
        "split it flags about 90 of 100 (95% interval 86 to 93) tumor slices; about 4 of 100 "
        "(95% interval 2 to 7) healthy slices are flagged too.")
    page.screenshot(path=str(artefacts / "upload-operating-point.png"))


def test_named_operating_points_are_all_explained(page: Any, server_url: str) -> None:
    card = json.loads(SHIPPED_CARD.read_text())
    card["operating_points"] = {  # as model_contract writes them
        "default": "screening",
        "balanced": {"threshold": 0.86, "test": {"sensitivity": {"value": 0.9},
                                                 "specificity": {"value": 0.96}}},
        "screening": {"threshold": 0.31, "test": {
            "sensitivity": {"value": 0.951, "ci95": [0.92, 0.97]},
            "specificity": {"value": 0.912, "ci95": [0.88, 0.94]}}},
    }
    serve_card(page, server_url, card)
    page.goto(server_url + "/")
    page.wait_for_function(
        "() => document.getElementById('operating-point-text').textContent.includes('balanced')")
    words = page.text_content("#operating-point-text") or ""
    assert words.startswith("screening (default): P(tumor) at or above 0.310 is flagged. On "
                            "the test split it flags about 95 of 100 (95% interval 92 to 97)")
    assert "about 9 of 100 (95% interval 6 to 12) healthy" in words
    assert "balanced: P(tumor) at or above 0.860 is flagged." in words
    assert "about 4 of 100 healthy slices are flagged too" in words

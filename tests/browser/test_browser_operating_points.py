"""The upload page with a model whose card names operating points: a labelled selector, used
from the keyboard, sends the chosen point with the batch requests, and the table names the
point each answer used."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from accessibility import serious_violations
from operating_point_models import with_operating_points
from server_process import service_process
from test_browser_upload_page import classify_files, write_files

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server_url(exported_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:
    """This module's server: the test model with `screening` (default, threshold 0: every
    slice flagged) and `balanced` (threshold 1: none flagged)."""
    folder = tmp_path_factory.mktemp("browser-points")
    models = with_operating_points(exported_model_dir, folder)
    with service_process(models, folder / "server.log") as server:
        yield server.url


def batch_urls(page: Any) -> list[str]:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url)
            if "/predict/batch" in request.url else None)
    return urls


def test_the_operating_point_is_chosen_with_the_keyboard_and_sent(
    offline_page: Any, server_url: str, slice_png: Any, tmp_path: Path, axe_source: str,
    artefacts: Path,
) -> None:
    page = offline_page
    paths = write_files(tmp_path, {"a.png": slice_png(30, 64, 64), "b.png": slice_png(31, 64, 64)})
    urls = batch_urls(page)
    rows = classify_files(page, server_url, paths)
    assert [(row["result"], row["point"]) for row in rows] == \
        [("tumor flagged", "screening (threshold 0.000)")] * 2
    assert urls[-1].endswith("/predict/batch?operating_point=screening")

    select = page.get_by_label("Operating point", exact=True)
    assert select.is_visible()
    options = select.locator("option").all_text_contents()
    assert options == ["screening (default), threshold 0.000", "balanced, threshold 1.000"]
    select.focus()
    page.keyboard.press("ArrowDown")
    assert select.input_value() == "balanced"
    page.keyboard.press("Tab")  # to the API key field, then to Classify
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "submit"
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('#results-body tr td:nth-child(6)')"
        "?.textContent.startsWith('balanced')", timeout=30_000)
    assert urls[-1].endswith("/predict/batch?operating_point=balanced")
    shown = page.eval_on_selector_all(
        "#results-body tr", "trs => trs.map(tr => [tr.querySelector('.result').textContent, "
        "tr.children[5].textContent])")
    assert shown == [["no tumor flagged", "balanced (threshold 1.000)"]] * 2

    words = page.text_content("#operating-point-text") or ""
    assert words.startswith(
        "screening (default): P(tumor) at or above 0.000 is flagged. On the test split it flags "
        "about 95 of 100 (95% interval 92 to 97) tumor slices; about 9 of 100 (95% interval 6 "
        "to 12) healthy slices are flagged too.")
    page.screenshot(path=str(artefacts / "upload-operating-point-selector.png"), full_page=True)
    assert serious_violations(page, axe_source) == []
    assert page.blocked_requests == []


def configure_balanced(route: Any) -> None:
    """The page as a service started with MRI_OPERATING_POINT=balanced serves it."""
    served = route.fetch()
    route.fulfill(response=served, body=served.text().replace(
        '<meta name="operating-point" content="">',
        '<meta name="operating-point" content="balanced">'))


def test_the_services_configured_point_is_the_pages_default(
    page: Any, server_url: str, slice_png: Any, tmp_path: Path
) -> None:
    page.route(server_url + "/", configure_balanced)
    urls = batch_urls(page)
    rows = classify_files(page, server_url, write_files(tmp_path, {"a.png": slice_png(32, 64, 64)}))
    select = page.get_by_label("Operating point", exact=True)
    assert select.input_value() == "balanced"
    assert select.locator("option").all_text_contents() == [
        "balanced (default), threshold 1.000", "screening, threshold 0.000"]
    assert (page.text_content("#operating-point-text") or "").startswith("balanced (default): ")
    assert urls == [f"{server_url}/predict/batch?operating_point=balanced"]
    assert [(row["result"], row["point"]) for row in rows] == \
        [("no tumor flagged", "balanced (threshold 1.000)")]

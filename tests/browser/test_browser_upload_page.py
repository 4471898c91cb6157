"""The upload page in headless Chromium (Debian's `chromium`), driven with Playwright's Python
API against a real `python -m service` process: choose a file, submit, see the label."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from dicom_files import DICOM_MAKERS
from synthetic_slices import synthetic_slice

pytestmark = pytest.mark.browser


def submit_scan(page: Any, server_url: str, image: bytes, folder: Path, route: str) -> Any:
    """Ask `route` directly for the expected answer, then choose the file on the page and
    click once; returns the expected answer."""
    scan = folder / "scan.png"
    scan.write_bytes(image)
    expected = httpx.post(f"{server_url}{route}", files={"file": ("scan.png", image)}).json()
    page.goto(server_url + "/")
    assert page.title() == "Brain MRI tumor classifier"
    assert page.is_hidden("#result")
    page.set_input_files("#file", str(scan))
    page.click("#submit")
    return expected


def test_choose_a_file_submit_and_see_the_label(
    page: Any, server_url: str, sample_images: dict[str, bytes], tmp_path: Path
) -> None:
    expected = submit_scan(page, server_url, sample_images["png_L"], tmp_path, "/predict")
    page.wait_for_selector("#result", state="visible", timeout=20_000)

    label = page.text_content("#label")
    assert label == expected["label"]
    assert label in {"tumor", "healthy"}
    assert page.text_content("#probability") == f"{expected['tumor_probability']:.3f}"
    assert page.text_content("#model") == "test-model version 1"
    assert page.is_hidden("#error")
    screenshot = tmp_path / "upload-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 5_000
    assert label in page.inner_text("body")


def test_a_refused_file_shows_the_problem(page: Any, server_url: str, tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"this is not an image")
    page.goto(server_url + "/")
    page.set_input_files("#file", str(notes))
    page.click("#submit")
    page.wait_for_selector("#error", state="visible", timeout=20_000)
    message = page.text_content("#error") or ""
    assert "Unsupported Media Type" in message and "Accepted formats" in message
    assert page.is_hidden("#result")
    page.screenshot(path=str(tmp_path / "upload-page-error.png"))


def test_a_dicom_file_is_classified_and_its_converted_slice_shown(
    page: Any, server_url: str, tmp_path: Path
) -> None:
    scan = tmp_path / "IM0001.dcm"
    # A windowed slice the tiny test model's input gate accepts (the server enforces it).
    scan.write_bytes(DICOM_MAKERS["mr_voi_lut"](synthetic_slice(5)))
    expected = httpx.post(f"{server_url}/predict",
                          files={"file": ("IM0001.dcm", scan.read_bytes())}).json()
    page.goto(server_url + "/")
    page.set_input_files("#file", str(scan))
    assert page.is_hidden("#preview")  # a browser cannot show DICOM itself
    page.click("#submit")
    page.wait_for_selector("#classified-image", state="visible", timeout=20_000)
    assert page.text_content("#label") == expected["label"]
    assert page.text_content("#sop-uid") == expected["dicom"]["sop_instance_uid"]
    size = page.eval_on_selector(
        "#classified-image", "image => [image.naturalWidth, image.naturalHeight]"
    )
    assert size == [96, 80]  # the slice's own grid, converted by the server
    page.screenshot(path=str(tmp_path / "upload-page-dicom.png"), full_page=True)


def test_an_image_the_gate_refuses_gets_a_friendly_message(
    page: Any, server_url: str, tmp_path: Path
) -> None:
    import numpy as np
    from PIL import Image

    photo = tmp_path / "holiday.png"
    noise = np.random.default_rng(5).integers(0, 256, (60, 80, 3), np.uint8)
    Image.fromarray(noise, "RGB").save(photo)
    page.goto(server_url + "/")
    page.set_input_files("#file", str(photo))
    page.click("#submit")
    page.wait_for_selector("#refusal", state="visible", timeout=20_000)
    text = page.text_content("#refusal") or ""
    assert "does not look like a brain MRI slice" in text
    assert page.is_hidden("#error") and page.is_hidden("#result")
    page.screenshot(path=str(tmp_path / "upload-page-refusal.png"))


def _canvas_sum(page: Any) -> float:
    return float(page.evaluate("""() => {
        const canvas = document.getElementById("overlay");
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let total = 0;
        for (let i = 0; i < data.length; i += 4) total += data[i] + data[i + 1] + data[i + 2];
        return total;
    }"""))


def test_one_click_shows_the_heatmap_over_the_scan_with_an_opacity_slider(
    page: Any, server_url: str, sample_images: dict[str, bytes], tmp_path: Path
) -> None:
    expected = submit_scan(page, server_url, sample_images["png_L"], tmp_path, "/explain")
    page.wait_for_selector("#overlay-view", state="visible", timeout=20_000)
    assert page.is_visible("#scan-view") and page.is_visible("#opacity")
    assert page.text_content("#probability") == f"{expected['tumor_probability']:.3f}"
    size = page.evaluate("() => [overlay.width, overlay.height]")
    assert size == [expected["heatmap"]["width"], expected["heatmap"]["height"]]

    page.fill("#opacity", "0")
    page.dispatch_event("#opacity", "input")
    plain = _canvas_sum(page)
    page.fill("#opacity", "1")
    page.dispatch_event("#opacity", "input")
    coloured = _canvas_sum(page)
    assert plain > 0 and coloured != plain  # the slider re-blends without a new request
    page.screenshot(path=str(tmp_path / "upload-page-overlay.png"), full_page=True)

"""The upload page in headless Chromium (Debian's `chromium`), driven with Playwright's Python
API against a real `python -m service` process (its input gate enforcing, the default):
many files at once, the results table, the heatmap, the CSV export, accessibility."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from accessibility import serious_violations
from dicom_files import DICOM_MAKERS, multiframe_file
from PIL import Image
from synthetic_slices import synthetic_slice

pytestmark = pytest.mark.browser
REFUSED = "not a brain MRI slice: not classified"


def colour_noise() -> bytes:
    """Saturated colour noise: the test model's input gate refuses it."""
    noise = np.random.default_rng(5).integers(0, 256, (60, 80, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise, "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def write_files(folder: Path, files: dict[str, bytes]) -> list[str]:
    paths = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths.append(str(folder / name))
    return paths


def classify_files(page: Any, server_url: str, paths: list[str]) -> list[dict[str, Any]]:
    """Open the page, choose the files, press Classify; the table's rows once all are in."""
    page.goto(server_url + "/")
    assert page.title() == "Brain MRI tumor classifier"
    for nothing_yet in ("#progress-row", "#results", "#viewer", "#error"):
        assert page.is_hidden(nothing_yet), nothing_yet
    page.set_input_files("#files", paths)
    plural = "" if len(paths) == 1 else "s"
    assert page.text_content("#chosen") == f"{len(paths)} file{plural} chosen."
    page.click("#submit")
    page.wait_for_function(
        "n => document.getElementById('progress-text').textContent === "
        "`${n} of ${n} files classified`", arg=len(paths), timeout=30_000)
    return table_rows(page)


def table_rows(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate("""() => [...document.querySelectorAll('#results-body tr')]
        .map(tr => ({name: tr.querySelector('th').textContent,
                     probability: tr.querySelector('.probability').textContent,
                     result: tr.querySelector('.result').textContent,
                     check: tr.querySelector('.check').textContent,
                     point: tr.children[5].textContent,
                     thumbnail: tr.querySelector('.thumbnail').textContent,
                     image: Boolean(tr.querySelector('.thumbnail img'))}))"""))


def canvas_sum(page: Any) -> float:
    return float(page.evaluate("""() => {
        const canvas = document.getElementById("overlay");
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let total = 0;
        for (let i = 0; i < data.length; i += 4) total += data[i] + data[i + 1] + data[i + 2];
        return total;
    }"""))


def check_overlay(page: Any, expected: dict[str, Any]) -> None:
    page.click("#results-body tr:has-text('slice.png') button")
    page.wait_for_selector("#overlay-view", state="visible", timeout=20_000)
    assert page.text_content("#viewer-name") == "slice.png"
    assert page.is_visible("#viewer-scan") and page.is_visible("#opacity")
    size = page.evaluate("() => [overlay.width, overlay.height]")
    assert size == [expected["heatmap"]["width"], expected["heatmap"]["height"]]
    page.fill("#opacity", "0")
    page.dispatch_event("#opacity", "input")
    plain = canvas_sum(page)
    page.fill("#opacity", "1")
    page.dispatch_event("#opacity", "input")
    assert plain > 0 and canvas_sum(page) != plain  # re-blended without a new request


def exported_csv(page: Any) -> list[dict[str, str]]:
    with page.expect_download() as download:
        page.click("#export-csv")
    path = download.value.path()
    assert download.value.suggested_filename == "mri-classifications.csv"
    return list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))


def test_many_files_give_a_table_a_heatmap_and_a_csv(
    offline_page: Any, server_url: str, sample_images: dict[str, bytes], tmp_path: Path,
    artefacts: Path, axe_source: str,
) -> None:
    page = offline_page
    files = {"slice.png": sample_images["png_L"], "holiday.png": colour_noise(),
             "broken.png": b"this is not an image"}
    expected = httpx.post(f"{server_url}/explain", files={"file": files["slice.png"]}).json()
    rows = {row["name"]: row for row in classify_files(page, server_url,
                                                       write_files(tmp_path, files))}
    assert set(rows) == set(files)
    flagged = expected["label"] == "tumor"
    good = rows["slice.png"]
    assert good["result"] == ("tumor flagged" if flagged else "no tumor flagged")
    assert good["probability"] == f"{expected['tumor_probability']:.3f}"
    assert good["check"] == "passed: looks like a brain MRI slice"
    assert good["point"] == "the model's operating point (threshold 0.500)"
    assert rows["holiday.png"]["result"] == REFUSED
    assert rows["holiday.png"]["check"] == "refused: not a brain MRI slice"
    assert rows["broken.png"]["result"].startswith("Not an image this service reads")
    assert rows["holiday.png"]["probability"] == rows["broken.png"]["probability"] == "—"
    page.wait_for_function("() => !document.body.textContent.includes('loading preview')")
    assert [row["image"] for row in table_rows(page)] == [True, True, False]
    assert "healthy" not in page.inner_text("#results").lower()
    page.screenshot(path=str(artefacts / "upload-table.png"), full_page=True)

    check_overlay(page, expected)
    page.screenshot(path=str(artefacts / "upload-heatmap.png"), full_page=True)

    exported = {row["file"]: row for row in exported_csv(page)}
    assert set(exported) == set(files)
    assert exported["slice.png"]["p_tumor"] == good["probability"]
    assert exported["slice.png"]["result"] == good["result"]
    assert exported["slice.png"]["threshold"] == "0.500"
    assert exported["holiday.png"]["result"] == REFUSED
    assert "not an image in an accepted format" in exported["broken.png"]["error_detail"]

    assert serious_violations(page, axe_source) == []
    assert page.blocked_requests == []  # nothing from the web, even with results shown


def test_columns_sort_by_keyboard(
    page: Any, server_url: str, slice_png: Any, tmp_path: Path
) -> None:
    files = {f"scan-{name}.png": slice_png(seed, 96, 80)
             for seed, name in enumerate(["c", "a", "b"], start=20)}
    classify_files(page, server_url, write_files(tmp_path, files))
    header = "#results-table th:has(button[data-sort='name'])"
    page.focus("button[data-sort='name']")
    page.keyboard.press("Enter")
    assert page.get_attribute(header, "aria-sort") == "ascending"
    assert [row["name"] for row in table_rows(page)] == ["scan-a.png", "scan-b.png", "scan-c.png"]
    page.keyboard.press("Space")
    assert page.get_attribute(header, "aria-sort") == "descending"
    assert [row["name"] for row in table_rows(page)] == ["scan-c.png", "scan-b.png", "scan-a.png"]

    page.focus("button[data-sort='probability']")
    page.keyboard.press("Enter")
    shown = [float(row["probability"]) for row in table_rows(page)]
    assert shown == sorted(shown)
    assert page.get_attribute(header, "aria-sort") == "none"


def claim_a_larger_limit(route: Any) -> None:
    served = route.fetch()
    route.fulfill(response=served, body=served.text().replace('content="32"', 'content="100"'))


def test_more_files_than_the_batch_limit_are_sent_in_chunks(
    page: Any, server_url: str, slice_png: Any, tmp_path: Path
) -> None:
    """The page sends at most the limit it was served; told a larger one, it learns the real
    limit from the 422 too_many_files answer and splits."""
    limit = httpx.get(f"{server_url}/").text.split('name="max-batch-files" content="')[1]
    assert limit.startswith("32\"")
    files = {f"s{index:02d}.png": slice_png(index, 40, 40) for index in range(35)}
    batches: list[int] = []
    page.on("response", lambda response: batches.append(response.status)
            if response.url.endswith("/predict/batch") else None)
    page.route(server_url + "/", claim_a_larger_limit)
    rows = classify_files(page, server_url, write_files(tmp_path, files))
    assert len(rows) == 35
    assert batches == [422, 200, 200]  # 35 refused, then 32 and 3
    assert {row["name"] for row in rows} == set(files)


def test_dicom_files_are_shown_as_the_service_converts_them(
    page: Any, server_url: str, tmp_path: Path, artefacts: Path
) -> None:
    dicom = DICOM_MAKERS["mr_voi_lut"](synthetic_slice(5))  # a slice the test gate accepts
    frames = multiframe_file([synthetic_slice(6, (64, 48)), synthetic_slice(7, (64, 48))])
    expected = httpx.post(f"{server_url}/predict", files={"file": ("IM1.dcm", dicom)}).json()
    rows = classify_files(page, server_url,
                          write_files(tmp_path, {"IM1.dcm": dicom, "MF.dcm": frames}))
    assert [row["name"] for row in rows] == ["IM1.dcm", "MF.dcm (frame 1)", "MF.dcm (frame 2)"]
    assert rows[0]["probability"] == f"{expected['tumor_probability']:.3f}"
    page.wait_for_function("() => document.querySelectorAll('.thumbnail img').length === 3")
    sizes = page.eval_on_selector_all(
        ".thumbnail img", "images => images.map(i => [i.naturalWidth, i.naturalHeight])")
    assert sizes == [[96, 80], [64, 48], [64, 48]]  # each slice's own grid, via POST /convert
    page.screenshot(path=str(artefacts / "upload-dicom.png"), full_page=True)


def test_files_dropped_on_the_page_are_chosen(page: Any, server_url: str) -> None:
    page.goto(server_url + "/")
    page.evaluate("""() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File(["a"], "one.png", {type: "image/png"}));
        transfer.items.add(new File(["b"], "two.dcm"));
        document.getElementById("drop-zone").dispatchEvent(
            new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""")
    assert page.text_content("#chosen") == "2 files chosen."


def test_csv_cells_are_quoted_and_formulas_defused(page: Any, server_url: str) -> None:
    page.goto(server_url + "/")
    cells = page.evaluate("""async () => {
        const {csvCell} = await import("/static/js/csv.js");
        return ["=HYPERLINK(\\"http://x\\")", "+1", "-2", "@SUM(A1)", "a,b", "say \\"hi\\"",
                "two\\nlines", "plain.png", 0.5].map(csvCell);
    }""")
    assert cells == ['"\'=HYPERLINK(""http://x"")"', "'+1", "'-2", "'@SUM(A1)", '"a,b"',
                     '"say ""hi"""', '"two\nlines"', "plain.png", "0.5"]


def refuse_large_requests(route: Any) -> None:
    """As a service with a small MRI_MAX_BATCH_UPLOAD_BYTES would: 413 for a request with
    several files, or with the one file called big.png."""
    body = route.request.post_data_buffer or b""
    if body.count(b'name="files"') > 1 or b'filename="big.png"' in body:
        route.fulfill(status=413, content_type="application/problem+json", body=json.dumps({
            "type": "urn:brain-mri-classifier:problem:body_too_large", "status": 413,
            "title": "Content Too Large", "detail": "The request body is larger than the limit "
            "of 100 bytes."}))
    else:
        route.continue_()


def test_a_batch_too_large_to_send_is_split_down_to_single_files(
    page: Any, server_url: str, slice_png: Any, tmp_path: Path
) -> None:
    files = {"a.png": slice_png(30, 40, 40), "b.png": slice_png(31, 40, 40),
             "big.png": slice_png(32, 40, 40)}
    statuses: list[int] = []
    page.on("response", lambda response: statuses.append(response.status)
            if response.url.endswith("/predict/batch") else None)
    page.route(server_url + "/predict/batch", refuse_large_requests)
    rows = {row["name"]: row for row in classify_files(page, server_url,
                                                       write_files(tmp_path, files))}
    assert statuses == [413, 413, 200, 200, 413]  # 3 files, then 2, then one at a time
    assert rows["big.png"]["result"] == "The file is too large to send to this service."
    assert "too large" not in rows["a.png"]["result"] + rows["b.png"]["result"]

"""POST /explain: the prediction with its Grad-CAM heatmap on the upload's own grid, the PNG
overlay with `Accept: image/png`, 501 on a model exported without `explain`, its metrics."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dicom_files import DICOM_MAKERS, multiframe_file
from fastapi.testclient import TestClient
from PIL import Image
from service_helpers import assert_problem
from test_api_metrics import scrape, value

from service.heatmaps import colour_table

EXPLAIN_FIELDS = {"label", "tumor_probability", "threshold", "model", "heatmap"}



def _heatmap(body: dict[str, Any]) -> np.ndarray:
    image = Image.open(io.BytesIO(base64.b64decode(body["heatmap"]["png_base64"])))
    assert image.format == "PNG" and image.mode == "L"
    assert image.size == (body["heatmap"]["width"], body["heatmap"]["height"])
    return np.asarray(image)


@pytest.mark.parametrize(("width", "height"), [(97, 61), (61, 97), (33, 35), (301, 203)])
def test_heatmap_has_the_upload_size(
    client: TestClient, slice_png: Callable[[int, int, int], bytes], width: int, height: int
) -> None:
    data = slice_png(width, width, height)
    response = client.post("/explain", files={"file": ("odd.png", data)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= EXPLAIN_FIELDS
    assert (body["heatmap"]["width"], body["heatmap"]["height"]) == (width, height)
    levels = _heatmap(body)
    assert levels.max() == 255  # the strongest evidence is 255 by definition
    assert levels.min() == 0  # the black frame around the head is outside the crop box


def test_heatmap_follows_exif_orientation(
    client: TestClient, sample_images: dict[str, bytes]
) -> None:
    rotated = sample_images["jpeg_exif_rotated"]
    stored = Image.open(io.BytesIO(rotated)).size
    body = client.post("/explain", files={"file": ("r.jpg", rotated)}).json()
    # Orientation 6 turns the picture a quarter: the upload as shown is stored height x width.
    assert (body["heatmap"]["width"], body["heatmap"]["height"]) == (stored[1], stored[0])
    assert _heatmap(body).shape == (stored[0], stored[1])


@pytest.mark.parametrize("name", ["png_L", "jpeg_RGB", "tiff_I16", "jpeg_exif_rotated"])
def test_explain_answers_what_predict_answers(
    client: TestClient, sample_images: dict[str, bytes], name: str
) -> None:
    files = {"file": (name, sample_images[name])}
    predicted = client.post("/predict", files=files).json()
    explained = client.post("/explain", files=files).json()
    assert explained["tumor_probability"] == pytest.approx(predicted["tumor_probability"],
                                                           abs=1e-6)
    for key in ("label", "threshold", "model"):
        assert explained[key] == predicted[key]


def test_png_overlay_with_accept_image_png(client: TestClient, png: bytes) -> None:
    files = {"file": ("scan.png", png)}
    heat = _heatmap(client.post("/explain", files=files).json())
    response = client.post("/explain", files=files, headers={"Accept": "image/png"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    overlay = Image.open(io.BytesIO(response.content))
    scan = Image.open(io.BytesIO(png)).convert("RGB")
    assert overlay.format == "PNG" and overlay.mode == "RGB" and overlay.size == scan.size
    pixels, original = np.asarray(overlay), np.asarray(scan)
    cold, hottest = heat == 0, heat == 255
    np.testing.assert_array_equal(pixels[cold], original[cold])  # no evidence: the scan
    # The strongest evidence: the colour map's top colour at the default weight 0.6.
    expected = np.rint(original[hottest] * 0.4 + colour_table()[255] * 0.6)
    np.testing.assert_allclose(pixels[hottest], expected, atol=1)


@pytest.mark.parametrize("accept", ["application/json", "*/*", "image/png;q=0.5, "
                                    "application/json", "text/html"])
def test_json_unless_png_is_preferred(client: TestClient, png: bytes, accept: str) -> None:
    response = client.post("/explain", files={"file": ("s.png", png)}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


def test_explain_runs_the_same_upload_checks(client: TestClient) -> None:
    assert_problem(client.post("/explain", files={"file": ("x.png", b"nope")}), 415)
    assert_problem(client.post("/explain", files={"file": ("x.png", b"")}), 422)
    assert_problem(client.post("/explain"), 422)


def test_explain_requires_the_api_key(make_client: Any, png: bytes) -> None:
    with make_client(api_key="k") as client:
        assert_problem(client.post("/explain", files={"file": ("s.png", png)}), 401)
        ok = client.post("/explain", files={"file": ("s.png", png)}, headers={"X-API-Key": "k"})
        assert ok.status_code == 200


def test_501_on_a_model_without_explain(
    make_client: Any, unexplained_model_dir: Path, png: bytes
) -> None:
    with make_client(model_dir=unexplained_model_dir) as client:
        before = scrape(client)
        response = client.post("/explain", files={"file": ("s.png", png)})
        body = assert_problem(response, 501, "no explain signature")
        assert body["type"].endswith(":explain_unsupported")
        assert body["model"] == {"name": "test-model", "version": 1}
        assert client.post("/predict", files={"file": ("s.png", png)}).status_code == 200
        after = scrape(client)
    assert value(after, "mri_rejected_inputs_total", reason="explain_unsupported") == 0
    requests = "mri_http_requests_total"
    assert value(after, requests, route="/explain", method="POST", status="501") - value(
        before, requests, route="/explain", method="POST", status="501") == 1


def test_explain_metrics_stand_apart_from_predict(
    client: TestClient, sample_images: dict[str, bytes]
) -> None:
    before = scrape(client)
    labels = [client.post("/explain", files={"file": (n, sample_images[n])}).json()["label"]
              for n in ("png_L", "jpeg_RGB")]
    client.post("/explain", files={"file": ("x", b"nope")})
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "mri_http_requests_total"
    assert delta(requests, route="/explain", method="POST", status="200") == 2
    assert delta(requests, route="/explain", method="POST", status="415") == 1
    assert delta(requests, route="/predict", method="POST", status="200") == 0
    assert delta("mri_http_request_duration_seconds_count", route="/explain", method="POST") == 3
    assert delta("mri_explain_inference_seconds_count") == 2
    for label in ("tumor", "healthy"):
        assert delta("mri_explanations_total", label=label) == labels.count(label)
        assert delta("mri_predictions_total", label=label) == 0
    assert delta("mri_batch_size_count") == 0  # explanations never enter the batcher
    assert delta("mri_rejected_inputs_total", reason="unsupported_format") == 1


def test_the_input_gate_refuses_on_explain_too(
    make_client: Any, png: bytes, colour_noise: bytes
) -> None:
    """The gate's score comes from the explain signature itself and is judged as on /predict."""
    with make_client(input_gate="enforce") as client:
        files = {"file": ("s.png", png)}
        explained = client.post("/explain", files=files)
        assert explained.status_code == 200, explained.text
        predicted = client.post("/predict", files=files).json()
        check = explained.json()["input_check"]
        assert check["passed"] is True
        assert check["brain_mri_threshold"] == predicted["input_check"]["brain_mri_threshold"]
        assert check["brain_mri_score"] == pytest.approx(
            predicted["input_check"]["brain_mri_score"], rel=1e-4, abs=1e-3)
        body = assert_problem(
            client.post("/explain", files={"file": ("n.png", colour_noise)}), 422)
    assert body["type"].endswith(":not_brain_mri")
    assert body["brain_mri_score"] < body["brain_mri_threshold"]


@pytest.mark.parametrize(("mode", "passed"), [("report", False), ("off", None)])
def test_explain_follows_the_gate_mode(
    make_client: Any, colour_noise: bytes, mode: str, passed: bool | None
) -> None:
    with make_client(input_gate=mode) as client:
        response = client.post("/explain", files={"file": ("n.png", colour_noise)})
    assert response.status_code == 200, response.text
    check = response.json()["input_check"]
    assert (check if passed is None else check["passed"]) is passed


def test_a_gateless_model_explains_without_an_input_check(
    make_client: Any, gateless_model_dir: Path, colour_noise: bytes
) -> None:
    with make_client(model_dir=gateless_model_dir, input_gate="enforce") as client:
        response = client.post("/explain", files={"file": ("n.png", colour_noise)})
    assert response.status_code == 200, response.text
    assert response.json()["input_check"] is None


SlicePng = Callable[[int, int, int], bytes]


def _grey(slice_png: SlicePng, seed: int, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(slice_png(seed, width, height))))


def test_a_dicom_slice_is_explained_on_its_own_grid(
    client: TestClient, slice_png: SlicePng
) -> None:
    dicom = DICOM_MAKERS["mr_12bit_signed_rescale_window"](_grey(slice_png, 3, 90, 70))
    body = client.post("/explain", files={"file": ("IM0001.dcm", dicom)}).json()
    assert (body["heatmap"]["width"], body["heatmap"]["height"]) == (90, 70)
    assert body["dicom"]["modality"] == "MR" and body["dicom"]["sop_instance_uid"]
    predicted = client.post("/predict", files={"file": ("IM0001.dcm", dicom)}).json()
    assert body["tumor_probability"] == pytest.approx(predicted["tumor_probability"], abs=1e-6)


def test_a_multi_frame_dicom_file_is_refused(client: TestClient, slice_png: SlicePng) -> None:
    frames = [_grey(slice_png, seed, 40, 30) for seed in (4, 5)]
    response = client.post("/explain", files={"file": ("multi.dcm", multiframe_file(frames))})
    body = assert_problem(response, 422, "/explain takes one image")
    assert body["type"].endswith(":multi_frame")


def test_two_file_parts_on_explain_are_refused(
    client: TestClient, slice_png: Callable[[int, int, int], bytes]
) -> None:
    # FastAPI alone would explain the last part and answer as if it were the only one.
    files = [("file", ("a.png", slice_png(64, 64, 64))), ("file", ("b.png", b"not an image"))]
    body = assert_problem(client.post("/explain", files=files), 422, "send exactly one")
    assert body["type"].endswith(":several_files")

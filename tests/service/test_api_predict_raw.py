"""POST /predict/raw: the image as the request body, answered exactly like POST /predict."""

from __future__ import annotations

import io
from typing import Any

import pytest
from dicom_files import DICOM_MAKERS, multiframe_file
from fastapi.testclient import TestClient
from pydicom import dcmread
from service_helpers import assert_problem
from synthetic_slices import synthetic_slice


def raw(client: TestClient, data: bytes, content_type: str = "image/png", **kwargs: Any) -> Any:
    headers = {"content-type": content_type, **kwargs.pop("headers", {})}
    return client.post("/predict/raw", content=data, headers=headers, **kwargs)


@pytest.mark.parametrize("sample", ["png_L", "jpeg_RGB", "tiff_I16", "bmp_L"])
def test_same_answer_as_the_multipart_route(
    client: TestClient, sample_images: dict[str, bytes], sample: str
) -> None:
    data = sample_images[sample]
    body = raw(client, data, "application/octet-stream")
    assert body.status_code == 200, body.text
    multipart = client.post("/predict", files={"file": ("scan", data)})
    assert body.json() == multipart.json()


def test_the_format_comes_from_the_bytes_not_the_header(
    client: TestClient, sample_images: dict[str, bytes]
) -> None:
    response = raw(client, sample_images["jpeg_L"], "image/png; charset=binary")
    assert response.status_code == 200, response.text
    assert_problem(raw(client, b"%PDF-1.7 not an image", "image/png"), 415, "Accepted formats")


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=x", "application/json",
                                          "text/plain", ""])
def test_a_body_that_is_not_an_image_type_is_refused(
    client: TestClient, png: bytes, content_type: str
) -> None:
    problem = assert_problem(raw(client, png, content_type), 415, "/predict/raw takes")
    assert problem["type"].endswith("unsupported_media_type")


def test_empty_and_oversized_bodies(make_client: Any, png: bytes) -> None:
    with make_client(max_upload_bytes=len(png) - 1) as client:
        assert_problem(raw(client, b""), 422, "empty")
        problem = assert_problem(raw(client, png), 413)
        assert problem["limit_bytes"] == len(png) - 1


def test_api_key_is_required_when_configured(make_client: Any, png: bytes) -> None:
    with make_client(api_key="s3cret-key") as client:
        assert_problem(raw(client, png), 401)
        ok = raw(client, png, headers={"X-API-Key": "s3cret-key"})
        assert ok.status_code == 200, ok.text


def test_documented_with_binary_bodies(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/predict/raw"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"image/*", "application/octet-stream", "application/dicom"}
    assert operation["responses"]["415"]["content"].keys() == {"application/problem+json"}


def test_dicom_bodies_answer_json_or_the_report(client: TestClient) -> None:
    data = DICOM_MAKERS["mr_16bit"](synthetic_slice(3))
    multipart = client.post("/predict", files={"file": ("scan.dcm", data)}).json()
    as_json = raw(client, data, "application/dicom")
    assert as_json.status_code == 200, as_json.text
    assert as_json.json() == multipart
    report = raw(client, data, "application/dicom", headers={"accept": "application/dicom"})
    assert report.status_code == 200
    assert report.headers["content-type"] == "application/dicom"
    assert dcmread(io.BytesIO(report.content)).Modality == "SR"
    many = multiframe_file([synthetic_slice(4), synthetic_slice(5)])
    assert_problem(raw(client, many, "application/dicom"), 422, "/predict/batch")

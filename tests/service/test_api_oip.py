"""The Open Inference Protocol v2 routes, in process: requests encoded and answers decoded by
tritonclient (a client this project did not write), compared with /predict's answers; every
error in the protocol's {"error": ...} shape with the status /predict would give."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient

TEST_MODEL_NAME = "test-model"  # tests/conftest.py exports it under this name
IMAGES = ["png_L", "jpeg_RGB", "tiff_I16", "webp_RGB", "gif_P"]
INFER = f"/v2/models/{TEST_MODEL_NAME}/infer"


def infer_body(
    images: list[bytes], binary: bool, outputs: list[str] | None = None,
    binary_outputs: bool = False,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers tritonclient sends for these images."""
    tensor = triton.InferInput("image", [len(images)], "BYTES")
    if binary:
        tensor.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=True)
    else:
        encoded = [base64.b64encode(image) for image in images]
        tensor.set_data_from_numpy(np.array(encoded, dtype=np.object_), binary_data=False)
    requested = None if outputs is None else [
        triton.InferRequestedOutput(name, binary_data=binary_outputs) for name in outputs
    ]
    body, json_size = triton.InferenceServerClient.generate_request_body(
        [tensor], outputs=requested
    )
    headers = {"Content-Type": "application/octet-stream" if json_size else "application/json"}
    if json_size is not None:
        headers["Inference-Header-Content-Length"] = str(json_size)
    return body, headers


def parse(response: Any) -> Any:
    assert response.status_code == 200, response.text
    header_length = response.headers.get("Inference-Header-Content-Length")
    return triton.InferenceServerClient.parse_response_body(
        response.content, header_length=int(header_length) if header_length else None
    )


def assert_oip_error(response: Any, status: int, contains: str = "") -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"]
    assert contains in body["error"], body["error"]
    message: str = body["error"]
    return message


@pytest.fixture
def predicted(client: TestClient, sample_images: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    answers = {}
    for name in IMAGES:
        response = client.post("/predict", files={"file": (name, sample_images[name])})
        assert response.status_code == 200, response.text
        answers[name] = response.json()
    return answers


def test_server_and_model_metadata_and_health(client: TestClient) -> None:
    server = client.get("/v2").json()
    assert server["name"] == "brain-mri-classifier" and "binary_tensor_data" in server["extensions"]
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    for path in (f"/v2/models/{TEST_MODEL_NAME}", f"/v2/models/{TEST_MODEL_NAME}/versions/1"):
        metadata = client.get(path).json()
        assert metadata["name"] == TEST_MODEL_NAME and metadata["versions"] == ["1"]
        assert metadata["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
        assert [(o["name"], o["datatype"]) for o in metadata["outputs"]] == [
            ("tumor_probability", "FP32"), ("label", "BYTES"), ("brain_mri_score", "FP32")]
        assert client.get(f"{path}/ready").json() == {"name": TEST_MODEL_NAME, "ready": True}
    assert_oip_error(client.get("/v2/models/other"), 404, "serves test-model version 1")
    assert_oip_error(client.get(f"/v2/models/{TEST_MODEL_NAME}/versions/7/ready"), 404)
    assert_oip_error(client.get("/v2/nothing-here"), 404)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_answers_equal_predict(
    client: TestClient, sample_images: dict[str, bytes], predicted: dict[str, dict[str, Any]],
    binary: bool,
) -> None:
    body, headers = infer_body([sample_images[name] for name in IMAGES], binary)
    for path in (INFER, f"/v2/models/{TEST_MODEL_NAME}/versions/1/infer"):
        result = parse(client.post(path, content=body, headers=headers))
        assert result.get_response()["model_name"] == TEST_MODEL_NAME
        assert result.get_response()["model_version"] == "1"
        probabilities = result.as_numpy("tumor_probability")
        labels = [label.decode() if isinstance(label, bytes) else label
                  for label in result.as_numpy("label")]
        assert probabilities.dtype == np.float32 and probabilities.shape == (len(IMAGES),)
        scores = result.as_numpy("brain_mri_score")  # the test model has an input gate
        assert scores.dtype == np.float32 and scores.shape == (len(IMAGES),)
        for name, probability, label, score in zip(IMAGES, probabilities, labels, scores,
                                                   strict=True):
            # Batch of N against batch of 1: oneDNN picks its kernels by batch size and CPU
            # (AVX-512 machines differ by about 1e-6), so equal means within 1e-5.
            assert abs(float(probability) - predicted[name]["tumor_probability"]) <= 1e-5, name
            assert label == predicted[name]["label"]
            # float32 sums over a batch of N vs of 1: equal to about 5e-6 of the score
            assert abs(float(score) - predicted[name]["input_check"]["brain_mri_score"]) <= 1e-4


def test_requested_outputs_and_request_id(
    client: TestClient, sample_images: dict[str, bytes], predicted: dict[str, dict[str, Any]]
) -> None:
    body, headers = infer_body([sample_images["png_L"]], binary=False, outputs=["label"])
    request = json.loads(body)
    request["id"] = "scan-42"
    answer = client.post(INFER, json=request).json()
    assert answer["id"] == "scan-42"
    assert answer["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [1], "data": [predicted["png_L"]["label"]]}
    ]
    body, headers = infer_body([sample_images["png_L"]], True, ["tumor_probability"], True)
    result = parse(client.post(INFER, content=body, headers=headers))
    assert result.as_numpy("label") is None
    assert result.get_output("tumor_probability")["parameters"]["binary_data_size"] == 4


def test_protocol_errors_are_400(client: TestClient, png: bytes) -> None:
    good = json.loads(infer_body([png], binary=False)[0])

    def with_input(**changes: Any) -> dict[str, Any]:
        return {**good, "inputs": [{**good["inputs"][0], **changes}]}

    assert_oip_error(client.post(INFER, content=b"{not json"), 400, "not valid")
    assert_oip_error(client.post(INFER, json={"inputs": "image"}), 400, "not valid")
    assert_oip_error(client.post(INFER, json=with_input(name="pixels")), 400, "'image'")
    assert_oip_error(client.post(INFER, json=with_input(datatype="UINT8")), 400, "BYTES")
    assert_oip_error(client.post(INFER, json=with_input(shape=[2])), 400, "2 base64 strings")
    assert_oip_error(client.post(INFER, json=with_input(shape=[1, 1])), 400, "shape [N]")
    assert_oip_error(client.post(INFER, json=with_input(data=["***"])), 400, "base64")
    assert_oip_error(client.post(INFER, json={**good, "outputs": [{"name": "x"}]}), 400,
                     "Unknown output")
    body, headers = infer_body([png], binary=True)
    headers["Inference-Header-Content-Length"] = str(len(body) + 1)
    assert_oip_error(client.post(INFER, content=body, headers=headers), 400, "header")
    body, headers = infer_body([png], binary=True)
    assert_oip_error(client.post(INFER, content=body[:-3], headers=headers), 400,
                     "binary_data_size")


def test_input_errors_match_predict(client: TestClient, png: bytes) -> None:
    body, headers = infer_body([png, b"not an image"], binary=True)
    message = assert_oip_error(client.post(INFER, content=body, headers=headers), 415,
                               "Element 1 of input 'image'")
    assert "not an image in an accepted format" in message
    body, headers = infer_body([png] * 33, binary=True)
    assert_oip_error(client.post(INFER, content=body, headers=headers), 422, "at most 32")
    metrics = client.get("/metrics").text
    assert 'mri_rejected_inputs_total{reason="unsupported_format"} 1.0' in metrics
    assert 'mri_rejected_inputs_total{reason="too_many_files"} 1.0' in metrics


def test_limits_and_api_key_apply(make_client: Any, png: bytes) -> None:
    with make_client(api_key="s3cret", max_upload_bytes=len(png) + 10) as client:
        body, headers = infer_body([png], binary=True)
        response = client.post(INFER, content=body, headers=headers)
        assert_oip_error(response, 401, "X-API-Key")
        assert response.headers["www-authenticate"].startswith("ApiKey")
        headers["X-API-Key"] = "s3cret"
        assert parse(client.post(INFER, content=body, headers=headers)).as_numpy("label").size == 1
        big, big_headers = infer_body([png + b"\0" * 20], binary=True)
        big_headers["X-API-Key"] = "s3cret"
        assert_oip_error(client.post(INFER, content=big, headers=big_headers), 413,
                         "over the limit")
        assert client.get("/v2/health/ready").status_code == 200  # health stays open


def test_not_ready_is_503_with_retry_after(make_client: Any, tmp_path: Path, png: bytes) -> None:
    with make_client(model_dir=tmp_path) as client:  # no model there: live, never ready
        assert client.get("/v2/health/live").status_code == 200
        response = client.get("/v2/health/ready")
        assert_oip_error(response, 503, "not ready")
        assert response.headers["retry-after"] == "2"
        body, headers = infer_body([png], binary=True)
        assert_oip_error(client.post(INFER, content=body, headers=headers), 503, "not ready")

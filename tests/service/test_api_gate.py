"""The brain-MRI input gate on the API: 422 not_brain_mri in enforce mode, batch isolation,
report and off modes, the input_check field, metrics, and an old model without a gate."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_helpers import assert_problem, scrape, value

REFUSAL_TYPE_SUFFIX = "not_brain_mri"



def gate_threshold(client: TestClient) -> float:
    card = client.get("/model").json()
    assert card["input_gate"]["output_key"] == "brain_mri_score"
    return float(card["input_gate"]["threshold"])


@pytest.fixture
def client(make_client: Any) -> Iterator[TestClient]:
    """The service's default mode, enforce (the other API tests run in report mode)."""
    with make_client(input_gate="enforce") as enforcing:
        assert enforcing.get("/health/ready").json()["input_gate"] == "enforce"
        yield enforcing


def test_a_slice_passes_and_says_so(client: TestClient, png: bytes) -> None:
    response = client.post("/predict", files={"file": ("slice.png", png)})
    assert response.status_code == 200, response.text
    check = response.json()["input_check"]
    assert check["passed"] is True
    assert check["brain_mri_threshold"] == gate_threshold(client)
    assert check["brain_mri_score"] >= check["brain_mri_threshold"]


def test_enforce_refuses_an_image_that_is_not_a_brain_mri(
    client: TestClient, colour_noise: bytes
) -> None:
    before = scrape(client)
    response = client.post("/predict", files={"file": ("noise.png", colour_noise)})
    body = assert_problem(response, 422, "2-D brain MRI slice")
    assert body["type"].endswith(REFUSAL_TYPE_SUFFIX)
    assert body["brain_mri_threshold"] == gate_threshold(client)
    assert body["brain_mri_score"] < body["brain_mri_threshold"]
    after = scrape(client)
    rejected = "mri_rejected_inputs_total"
    assert value(after, rejected, reason="not_brain_mri") \
        - value(before, rejected, reason="not_brain_mri") == 1
    assert value(after, "mri_brain_mri_score_count") - value(before, "mri_brain_mri_score_count") \
        == 1
    for label in ("tumor", "healthy"):  # a refused image gets no label
        assert value(after, "mri_predictions_total", label=label) \
            == value(before, "mri_predictions_total", label=label)


def test_batch_refuses_only_the_file_that_fails(
    client: TestClient, png: bytes, colour_noise: bytes
) -> None:
    response = client.post("/predict/batch", files=[
        ("files", ("a.png", png)), ("files", ("noise.png", colour_noise)),
        ("files", ("b.png", png)),
    ])
    assert response.status_code == 200
    first, refused, last = response.json()["results"]
    assert first["input_check"]["passed"] and last["input_check"]["passed"]
    assert first["tumor_probability"] == last["tumor_probability"]
    assert refused["filename"] == "noise.png" and "label" not in refused
    error = refused["error"]
    assert error["status"] == 422 and error["type"].endswith(REFUSAL_TYPE_SUFFIX)
    assert error["brain_mri_score"] < error["brain_mri_threshold"]


def test_report_mode_answers_and_flags(make_client: Any, colour_noise: bytes) -> None:
    with make_client(input_gate="report") as client:
        assert client.get("/health/ready").json()["input_gate"] == "report"
        response = client.post("/predict", files={"file": ("noise.png", colour_noise)})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["label"] in ("tumor", "healthy")
        check = answer["input_check"]
        assert check["passed"] is False
        assert check["brain_mri_score"] < check["brain_mri_threshold"]
        before = scrape(client)
        batch = client.post("/predict/batch", files=[("files", ("n.png", colour_noise))])
        assert batch.json()["results"][0]["input_check"]["passed"] is False
        assert value(scrape(client), "mri_rejected_inputs_total", reason="not_brain_mri") \
            == value(before, "mri_rejected_inputs_total", reason="not_brain_mri")


def test_off_mode_skips_the_gate(make_client: Any, colour_noise: bytes) -> None:
    with make_client(input_gate="off") as client:
        assert client.get("/health/ready").json()["input_gate"] == "off"
        before = scrape(client)
        response = client.post("/predict", files={"file": ("noise.png", colour_noise)})
        assert response.status_code == 200, response.text
        assert response.json()["input_check"] is None
        assert value(scrape(client), "mri_brain_mri_score_count") \
            == value(before, "mri_brain_mri_score_count")


def test_the_mode_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from service.config import Settings

    monkeypatch.setenv("MRI_INPUT_GATE", "REPORT")
    assert Settings().input_gate == "report"
    monkeypatch.setenv("MRI_INPUT_GATE", "sometimes")
    with pytest.raises(ValidationError, match="input_gate"):
        Settings()


def test_an_old_model_without_a_gate_is_served_as_before(
    make_client: Any, gateless_model_dir: Path, png: bytes, colour_noise: bytes
) -> None:
    with make_client(model_dir=gateless_model_dir) as client:
        assert client.get("/health/ready").json()["input_gate"] == "absent"
        assert "input_gate" not in client.get("/model").json()
        for image in (png, colour_noise):
            response = client.post("/predict", files={"file": ("x.png", image)})
            assert response.status_code == 200, response.text
            assert response.json()["input_check"] is None
        batch = client.post("/predict/batch", files=[("files", ("n.png", colour_noise))])
        assert "input_check" not in batch.json()["results"][0]


def test_a_card_promising_a_gate_the_graph_lacks_is_not_served(
    make_client: Any, gateless_model_dir: Path, exported_model_dir: Path, tmp_path: Path
) -> None:
    version = tmp_path / "test-model" / "1"
    shutil.copytree(gateless_model_dir / "test-model" / "1", version)
    gated_card = exported_model_dir / "test-model" / "1" / "assets" / "model_card.json"
    card_path = version / "assets" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["input_gate"] = json.loads(gated_card.read_text())["input_gate"]
    card_path.write_text(json.dumps(card))
    with make_client(model_dir=tmp_path) as client:
        body = assert_problem(client.get("/health/ready"), 503, "brain_mri_score")
        assert body["type"].endswith("not_ready")


def test_the_open_inference_protocol_applies_the_gate_too(
    client: TestClient, png: bytes, colour_noise: bytes
) -> None:
    from test_api_oip import INFER, assert_oip_error, infer_body

    body, headers = infer_body([png, colour_noise], binary=True)
    message = assert_oip_error(client.post(INFER, content=body, headers=headers), 422,
                               "Element 1 of input 'image'")
    assert "2-D brain MRI slice" in message
    body, headers = infer_body([png], binary=True)
    assert client.post(INFER, content=body, headers=headers).status_code == 200

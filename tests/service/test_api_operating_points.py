"""Named operating points: `?operating_point=` on /predict, /predict/batch, /predict/raw and
/explain (`parameters.operating_point` on the Open Inference Protocol's infer), the
MRI_OPERATING_POINT default, unknown names, and cards without operating points."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from operating_point_models import BALANCED, NAMES, SCREENING, with_operating_points
from service_helpers import assert_problem

INFER = "/v2/models/test-model/infer"


@pytest.fixture(scope="module")
def points_model_dir(exported_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test model (gate, explain signature) with `screening` (default) and `balanced`."""
    return with_operating_points(exported_model_dir, tmp_path_factory.mktemp("points"))


def predict(client: TestClient, data: bytes, **params: str) -> Any:
    return client.post("/predict", files={"file": ("scan.png", data)}, params=params)


def predict_raw(client: TestClient, data: bytes, **params: str) -> Any:
    return client.post("/predict/raw", content=data, params=params,
                       headers={"Content-Type": "image/png"})


def explain(client: TestClient, data: bytes, **params: str) -> Any:
    return client.post("/explain", files={"file": ("scan.png", data)}, params=params)


def batch(client: TestClient, images: list[bytes], **params: str) -> Any:
    files = [("files", (f"{index}.png", data)) for index, data in enumerate(images)]
    return client.post("/predict/batch", files=files, params=params)


def infer(client: TestClient, data: bytes, **parameters: Any) -> Any:
    body: dict[str, Any] = {"inputs": [{
        "name": "image", "datatype": "BYTES", "shape": [1],
        "data": [base64.b64encode(data).decode()],
    }]}
    if parameters:
        body["parameters"] = parameters
    return client.post(INFER, json=body)


def _assert_decided(body: dict[str, Any], name: str | None, threshold: float) -> None:
    assert body["operating_point"] == name, body
    assert body["threshold"] == threshold
    expected = "tumor" if body["tumor_probability"] >= threshold else "healthy"
    assert body["label"] == expected


def _json(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_every_route_takes_the_operating_point_and_answers_with_its_name(
    make_client: Any, points_model_dir: Path, png: bytes
) -> None:
    with make_client(model_dir=points_model_dir) as client:
        for send in (predict, predict_raw, explain):
            default = _json(send(client, png))
            _assert_decided(default, "screening", SCREENING)
            balanced = _json(send(client, png, operating_point="balanced"))
            _assert_decided(balanced, "balanced", BALANCED)
            assert balanced["tumor_probability"] == default["tumor_probability"]
            assert (default["label"], balanced["label"]) == ("tumor", "healthy")
        results = _json(batch(client, [png, png], operating_point="balanced"))["results"]
        assert len(results) == 2
        for item in results:
            _assert_decided(item, "balanced", BALANCED)
        for item in _json(batch(client, [png]))["results"]:
            _assert_decided(item, "screening", SCREENING)


def test_the_inference_protocol_takes_it_as_a_request_parameter(
    make_client: Any, points_model_dir: Path, png: bytes
) -> None:
    with make_client(model_dir=points_model_dir) as client:
        default = _json(infer(client, png))
        assert default["parameters"] == {"operating_point": "screening"}
        balanced = _json(infer(client, png, operating_point="balanced"))
        assert balanced["parameters"] == {"operating_point": "balanced"}
        labels = [next(o["data"] for o in body["outputs"] if o["name"] == "label")
                  for body in (default, balanced)]
        assert labels == [["tumor"], ["healthy"]]
        unknown = infer(client, png, operating_point="sensitive")
        assert unknown.status_code == 422 and "screening, balanced" in unknown.json()["error"]
        wrong_type = infer(client, png, operating_point=3)
        assert wrong_type.status_code == 400 and "must be a string" in wrong_type.json()["error"]


def test_the_model_card_lists_its_operating_points(
    make_client: Any, points_model_dir: Path
) -> None:
    with make_client(model_dir=points_model_dir) as client:
        card = _json(client.get("/model", headers={"Accept": "application/json"}))
        page = client.get("/model", headers={"Accept": "text/html"}).text
    assert card["operating_points"]["default"] == "screening"
    assert card["operating_points"]["balanced"]["threshold"] == BALANCED
    assert card["operating_points"]["screening"]["test"]["sensitivity"]["value"] == 0.95
    assert "about 95 of 100 (95% interval 92 to 97) tumor slices" in page


def test_an_unknown_operating_point_is_a_422_listing_the_known_ones(
    make_client: Any, points_model_dir: Path, png: bytes
) -> None:
    with make_client(model_dir=points_model_dir) as client:
        for send in (predict, predict_raw, explain):
            body = assert_problem(send(client, png, operating_point="sensitive"), 422,
                                  "Its operating points: screening, balanced.")
            assert body["type"].endswith("unknown_operating_point")
            assert body["available_operating_points"] == NAMES
            assert body["operating_point"] == "sensitive"
        body = assert_problem(batch(client, [png], operating_point="sensitive"), 422,
                              "sensitive")
        assert body["available_operating_points"] == NAMES


def test_the_environment_sets_the_default_and_a_request_overrides_it(
    make_client: Any, points_model_dir: Path, png: bytes
) -> None:
    with make_client(model_dir=points_model_dir, operating_point="balanced") as client:
        _assert_decided(_json(predict(client, png)), "balanced", BALANCED)
        _assert_decided(_json(explain(client, png)), "balanced", BALANCED)
        _assert_decided(_json(predict(client, png, operating_point="screening")), "screening",
                        SCREENING)


def test_an_environment_default_the_card_lacks_falls_back_to_the_cards_with_a_warning(
    make_client: Any, points_model_dir: Path, png: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="service"), \
            make_client(model_dir=points_model_dir, operating_point="ultra") as client:
        _assert_decided(_json(predict(client, png)), "screening", SCREENING)
    warnings = [r.getMessage() for r in caplog.records if "MRI_OPERATING_POINT" in r.getMessage()]
    assert warnings == ["MRI_OPERATING_POINT=ultra is not one of the model's operating points "
                        "(screening, balanced); requests naming none get the card's default"]


def test_a_model_without_operating_points_answers_as_before(
    make_client: Any, png: bytes
) -> None:
    with make_client(operating_point="screening") as client:  # ignored: the card has none
        _assert_decided(_json(predict(client, png)), None, 0.5)
        _assert_decided(_json(explain(client, png)), None, 0.5)
        [item] = _json(batch(client, [png]))["results"]
        assert "operating_point" not in item and item["threshold"] == 0.5
        assert "parameters" not in _json(infer(client, png))
        for send in (predict, predict_raw):
            body = assert_problem(send(client, png, operating_point="screening"), 422,
                                  "Its operating points: none")
            assert body["available_operating_points"] == []

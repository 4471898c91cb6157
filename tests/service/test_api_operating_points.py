"""Named operating points: `?operating_point=`, MRI_OPERATING_POINT, and cards without them."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_helpers import assert_problem

from model_contract import OperatingPoint, OperatingPoints, read_card, write_card

# Far apart, so the sample images fall on different sides of them.
SCREENING, BALANCED = 0.05, 0.95


@pytest.fixture(scope="module")
def points_model_dir(exported_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test model with a card that defines `screening` (default) and `balanced`."""
    models = tmp_path_factory.mktemp("points") / "models"
    shutil.copytree(exported_model_dir, models)
    version_dir = models / "test-model" / "1"
    card = read_card(version_dir)
    points = OperatingPoints("screening", {
        "screening": OperatingPoint(SCREENING, rule="sensitivity >= 0.95",
                                    summary="flags about 95 of 100 tumor slices"),
        "balanced": OperatingPoint(BALANCED, rule="Youden's J"),
    })
    write_card(version_dir, dataclasses.replace(card, threshold=SCREENING,
                                                operating_points=points))
    return models


def predict(client: TestClient, data: bytes, **params: str) -> Any:
    return client.post("/predict", files={"file": ("scan.png", data)}, params=params)


def _assert_decided(body: dict[str, Any], name: str | None, threshold: float) -> None:
    assert body["operating_point"] == name
    assert body["threshold"] == threshold
    expected = "tumor" if body["tumor_probability"] >= threshold else "healthy"
    assert body["label"] == expected


def test_default_and_named_operating_points_answer_with_their_name(
    make_client: Any, points_model_dir: Path, png: bytes
) -> None:
    with make_client(model_dir=points_model_dir) as client:
        default = predict(client, png).json()
        _assert_decided(default, "screening", SCREENING)
        balanced = predict(client, png, operating_point="balanced").json()
        _assert_decided(balanced, "balanced", BALANCED)
        assert balanced["tumor_probability"] == default["tumor_probability"]
        # The labels differ for a probability between the two thresholds.
        if SCREENING <= default["tumor_probability"] < BALANCED:
            assert (default["label"], balanced["label"]) == ("tumor", "healthy")
        card = client.get("/model").json()
        assert card["operating_points"]["default"] == "screening"
        assert card["operating_points"]["balanced"]["threshold"] == BALANCED


def test_unknown_operating_point_is_a_422_listing_the_known_ones(
    make_client: Any, points_model_dir: Path, png: bytes
) -> None:
    with make_client(model_dir=points_model_dir) as client:
        body = assert_problem(predict(client, png, operating_point="sensitive"), 422,
                              "sensitive")
        assert body["type"].endswith("unknown_operating_point")
        assert body["available_operating_points"] == ["screening", "balanced"]
        batch = client.post("/predict/batch", files=[("files", ("a.png", png))],
                            params={"operating_point": "sensitive"})
        assert_problem(batch, 422, "sensitive")


def test_environment_sets_the_default_and_a_request_overrides_it(
    make_client: Any, points_model_dir: Path, png: bytes
) -> None:
    with make_client(model_dir=points_model_dir, operating_point="balanced") as client:
        _assert_decided(predict(client, png).json(), "balanced", BALANCED)
        _assert_decided(predict(client, png, operating_point="screening").json(), "screening",
                        SCREENING)


def test_an_environment_default_the_card_lacks_falls_back_to_the_cards_with_a_warning(
    make_client: Any, points_model_dir: Path, png: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="service"), \
            make_client(model_dir=points_model_dir, operating_point="ultra") as client:
        _assert_decided(predict(client, png).json(), "screening", SCREENING)
    assert any("MRI_OPERATING_POINT=ultra" in r.getMessage() for r in caplog.records)


def test_batch_applies_the_operating_point_to_every_file(
    make_client: Any, points_model_dir: Path, sample_images: dict[str, bytes]
) -> None:
    files = [("files", (name, sample_images[name])) for name in ("png_L", "jpeg_RGB")]
    with make_client(model_dir=points_model_dir) as client:
        response = client.post("/predict/batch", files=files,
                               params={"operating_point": "balanced"})
    assert response.status_code == 200, response.text
    for item in response.json()["results"]:
        _assert_decided(item, "balanced", BALANCED)


def test_a_model_without_operating_points_uses_its_card_threshold(
    make_client: Any, png: bytes
) -> None:
    with make_client(operating_point="screening") as client:  # ignored: the card has none
        _assert_decided(predict(client, png).json(), None, 0.5)
        body = assert_problem(predict(client, png, operating_point="screening"), 422,
                              "screening")
        assert body["available_operating_points"] == []

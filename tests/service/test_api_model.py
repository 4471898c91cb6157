"""GET /model: the model card exported with the SavedModel, as it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from service_helpers import assert_problem


def test_model_card_is_served(client: TestClient, exported_version_dir: Path) -> None:
    response = client.get("/model")
    assert response.status_code == 200
    card = response.json()
    on_disk = json.loads((exported_version_dir / "assets" / "model_card.json").read_text())
    assert card == on_disk
    assert card["name"] == "test-model" and card["version"] == 1
    assert card["threshold"] == 0.5
    assert card["positive_class"] == "tumor"
    assert card["input"]["input_key"] == "image_bytes"


def test_model_card_when_not_ready_is_503(make_client: Any, tmp_path: Path) -> None:
    with make_client(model_dir=tmp_path) as client:
        assert_problem(client.get("/model"), 503, "not ready")

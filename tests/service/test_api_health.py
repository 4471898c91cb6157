"""GET /health/live, /health/ready, /health: live is not ready; ready means loaded and warm."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_helpers import assert_problem


def test_ready_names_the_loaded_model(client: TestClient) -> None:
    for path in ("/health/ready", "/health"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json() == {
            "status": "ready", "model": {"name": "test-model", "version": 1},
            "input_gate": "report",  # the API tests' mode (tests/service/conftest.py)
        }
    assert client.get("/health/live").json() == {"status": "live"}


def test_live_but_not_ready_while_loading(make_client: Any, exported_model_dir: Path) -> None:
    with make_client(wait=False) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        ready = client.get("/health/ready")
        if not runtime.wait_until_loaded(0):  # still loading when the probe answered
            assert_problem(ready, 503, "loading")
            assert ready.json()["state"] == "loading"
        assert client.get("/health/live").status_code == 200
        assert runtime.wait_until_loaded(60)
        assert client.get("/health/ready").status_code == 200


@pytest.mark.parametrize("path", ["/health/ready", "/health"])
def test_missing_model_is_live_not_ready(
    make_client: Any, tmp_path: Path, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with make_client(model_dir=tmp_path / "absent") as client:
        response = client.get(path)
        body = assert_problem(response, 503, "could not be loaded")
        assert body["state"] == "failed"
        assert str(tmp_path) not in response.text  # no server path in an answer: the log has it
        assert response.headers["retry-after"] == "2"
        assert client.get("/health/live").status_code == 200
    lines = [r for r in caplog.records if r.name == "service" and r.levelname == "ERROR"]
    assert len(lines) == 1 and "does not exist" in lines[0].getMessage()
    assert str(tmp_path / "absent") in lines[0].getMessage()


def test_corrupt_saved_model_is_live_not_ready(
    make_client: Any, exported_version_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "models" / "broken" / "1"
    shutil.copytree(exported_version_dir, broken)
    (broken / "saved_model.pb").write_bytes(b"garbage")
    with make_client(model_dir=tmp_path / "models") as client:
        assert_problem(client.get("/health/ready"), 503, "could not be loaded")
        assert client.get("/health/live").status_code == 200


def test_invalid_model_card_is_not_ready(
    make_client: Any, exported_version_dir: Path, tmp_path: Path
) -> None:
    version = tmp_path / "models" / "m" / "1"
    shutil.copytree(exported_version_dir, version)
    card_path = version / "assets" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["positive_class"] = "cancer"
    card_path.write_text(json.dumps(card))
    with make_client(model_dir=tmp_path / "models") as client:
        assert_problem(client.get("/health/ready"), 503, "model card")


def test_highest_version_is_served_and_model_name_chooses(
    make_client: Any, exported_version_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    for name, version in (("a", "1"), ("a", "10"), ("a", "9"), ("b", "1")):
        target = models / name / version
        shutil.copytree(exported_version_dir, target)
        card_path = target / "assets" / "model_card.json"
        card = json.loads(card_path.read_text())
        card.update(name=name, version=int(version))
        card_path.write_text(json.dumps(card))
    (models / "a" / "latest").mkdir()  # not a version: ignored
    with make_client(model_dir=models) as client:  # two names and no choice: not ready
        assert_problem(client.get("/health/ready"), 503, "MRI_MODEL_NAME")
    with make_client(model_dir=models, model_name="a") as client:
        assert client.get("/health/ready").json()["model"] == {"name": "a", "version": 10}
    with make_client(model_dir=models, model_name="zzz") as client:
        assert_problem(client.get("/health/ready"), 503, "no model named 'zzz'")

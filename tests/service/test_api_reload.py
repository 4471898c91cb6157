"""POST /admin/reload and MRI_MODEL_VERSION, in process. The swap under load, with polling, is
tests/e2e/test_e2e_reload.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model_versions import models_with_version_1, publish
from service_helpers import assert_problem


def test_admin_reload_swaps_in_a_new_version_and_refuses_a_broken_one(
    make_client: Any, exported_model_dir: Path, tmp_path: Path, png: bytes
) -> None:
    models = models_with_version_1(exported_model_dir, tmp_path)
    with make_client(model_dir=models, api_key="k", max_batch_size=4) as client:
        key = {"X-API-Key": "k"}
        before = client.post("/predict", files={"file": png}, headers=key).json()
        assert before["model"]["version"] == 1
        assert client.post("/admin/reload", headers=key).json() == {
            "reloaded": False, "model": {"name": "test-model", "version": 1}}
        assert_problem(client.post("/admin/reload"), 401)

        publish(models, 2)
        assert client.post("/admin/reload", headers=key).json()["reloaded"] is True
        after = client.post("/predict", files={"file": png}, headers=key).json()
        assert after["model"]["version"] == 2 and client.get("/model").json()["version"] == 2
        assert after["tumor_probability"] == before["tumor_probability"]  # the same weights

        publish(models, 3, corrupt=True)
        body = assert_problem(client.post("/admin/reload", headers=key), 409,
                              "version 2 keeps serving")
        assert body["serving_version"] == 2
        answer = client.post("/predict", files={"file": png}, headers=key).json()
        assert answer["model"]["version"] == 2
        assert client.get("/health/ready").status_code == 200
        metrics = client.get("/metrics").text
        assert "mri_model_reload_failures_total 1.0" in metrics
        assert 'mri_model_info{name="test-model",version="2"} 1.0' in metrics
        assert 'version="1"' not in metrics.split("mri_model_info")[-1]


def test_model_version_pins_a_version(
    make_client: Any, exported_model_dir: Path, tmp_path: Path, png: bytes
) -> None:
    models = models_with_version_1(exported_model_dir, tmp_path)
    publish(models, 2)
    with make_client(model_dir=models, model_version=1, max_batch_size=4) as client:
        assert client.get("/model").json()["version"] == 1
        assert client.post("/admin/reload").json()["reloaded"] is False  # pinned: no newer
    with make_client(model_dir=models, model_version=5) as client:
        body = assert_problem(client.get("/health/ready"), 503, "MRI_MODEL_VERSION is 5")
        assert body["state"] == "failed"

"""GET /openapi.json and /docs; openapi/openapi.json in the repository must not drift."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from service.openapi import DEFAULT_PATH, openapi_document

REPO = Path(__file__).resolve().parents[2]


def test_committed_openapi_document_matches_the_app() -> None:
    assert DEFAULT_PATH == REPO / "openapi" / "openapi.json"
    assert DEFAULT_PATH.is_file(), "run: python -m service.openapi --write"
    assert DEFAULT_PATH.read_text() == openapi_document(), (
        "openapi/openapi.json is stale: run python -m service.openapi --write"
    )


def test_openapi_check_command_detects_drift(tmp_path: Path) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    command = [sys.executable, "-m", "service.openapi", "--check", "--path", str(stale)]
    assert subprocess.run(command, cwd=REPO, capture_output=True).returncode == 1
    write = [sys.executable, "-m", "service.openapi", "--write", "--path", str(stale)]
    subprocess.run(write, cwd=REPO, check=True)
    assert subprocess.run(command, cwd=REPO, capture_output=True).returncode == 0


def test_openapi_describes_the_contract(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    for path in ("/predict", "/predict/batch", "/health/live", "/health/ready", "/health",
                 "/model", "/metrics"):
        assert path in paths
    predict = paths["/predict"]["post"]
    assert "multipart/form-data" in predict["requestBody"]["content"]
    for status in ("200", "401", "413", "415", "422", "503"):
        assert status in predict["responses"]
    assert "application/problem+json" in predict["responses"]["415"]["content"]
    assert "HTTPValidationError" not in json.dumps(document)
    prediction = document["components"]["schemas"]["Prediction"]["properties"]
    assert set(prediction) == {"label", "tumor_probability", "threshold", "operating_point",
                               "model", "dicom", "input_check"}
    check = document["components"]["schemas"]["InputCheck"]["properties"]
    assert set(check) == {"brain_mri_score", "brain_mri_threshold", "passed"}
    assert "not_brain_mri" in predict["responses"]["422"]["description"]
    for path in ("/predict", "/predict/batch", "/predict/raw", "/explain"):
        parameters = paths[path]["post"]["parameters"]
        assert ("operating_point", "query") in [(p["name"], p["in"]) for p in parameters]
    assert document["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"


def test_swagger_ui_is_served(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
    assert '<script src="/static/docs.js"' in response.text
    assert 'url: "/openapi.json"' in client.get("/static/docs.js").text

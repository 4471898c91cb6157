"""service/config.py and `python -m service` flags: every setting is an MRI_* variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.__main__ import logging_config, parse_args
from service.config import Settings, default_model_dir

REPO = Path(__file__).resolve().parents[2]


def test_environment_variables_set_every_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    values = {
        "MRI_HOST": "0.0.0.0", "MRI_PORT": "9001", "MRI_MODEL_DIR": str(tmp_path),
        "MRI_MODEL_NAME": "brain-tumor-cnn", "MRI_MAX_BATCH_SIZE": "16", "MRI_MAX_WAIT_MS": "0",
        "MRI_QUEUE_SIZE": "64", "MRI_MAX_UPLOAD_BYTES": "1000",
        "MRI_MAX_BATCH_UPLOAD_BYTES": "5000",
        "MRI_MAX_PIXELS": "1000000", "MRI_MAX_BATCH_FILES": "8", "MRI_API_KEY": "zq-secret-9",
        "MRI_CORS_ORIGINS": "https://a.example,https://b.example", "MRI_LOG_LEVEL": "WARNING",
        "MRI_ACCESS_LOG": "false", "MRI_TF_INTRA_OP_THREADS": "2", "MRI_TF_INTER_OP_THREADS": "1",
        "MRI_DECODE_THREADS": "3", "MRI_EXPLAIN_THREADS": "2", "MRI_RETRY_AFTER_SECONDS": "5",
        "MRI_GRACEFUL_SHUTDOWN_SECONDS": "3", "MRI_MODEL_VERSION": "2",
        "MRI_MODEL_POLL_SECONDS": "0.5", "MRI_INPUT_GATE": "Report",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert {f"MRI_{name.upper()}" for name in Settings.model_fields} == set(values)
    assert settings.host == "0.0.0.0" and settings.port == 9001
    assert settings.model_dir == tmp_path and settings.model_name == "brain-tumor-cnn"
    assert (settings.max_batch_size, settings.max_wait_ms, settings.queue_size) == (16, 0, 64)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "zq-secret-9"
    assert "zq-secret-9" not in repr(settings)  # the key never shows in logs or tracebacks
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.log_level == "warning" and settings.access_log is False
    assert (settings.tf_intra_op_threads, settings.decode_threads) == (2, 3)
    assert (settings.model_version, settings.model_poll_seconds) == (2, 0.5)
    assert settings.input_gate == "report"
    assert settings.explain_threads == 2


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"MRI_{name.upper()}", raising=False)
    settings = Settings()
    assert settings.model_dir == default_model_dir() == REPO / "models"
    assert settings.max_batch_files == 32
    assert settings.api_key is None and settings.cors_origins == []
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.input_gate == "enforce"


def test_empty_optional_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRI_API_KEY", "")
    monkeypatch.setenv("MRI_MODEL_NAME", "")
    monkeypatch.setenv("MRI_CORS_ORIGINS", "")
    monkeypatch.setenv("MRI_MAX_BATCH_SIZE", "")  # e.g. compose passing an unset variable on
    settings = Settings()
    assert settings.api_key is None and settings.model_name is None
    assert settings.cors_origins == []
    assert settings.max_batch_size == 32
    assert Settings(api_key="", model_name="").api_key is None


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRI_MAX_BATCH_SIZE", "0")
    with pytest.raises(ValueError, match="max_batch_size"):
        Settings()


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRI_PORT", "1234")
    monkeypatch.setenv("MRI_HOST", "10.0.0.1")
    overrides = parse_args(["--port", "8080", "--model-dir", "/srv/models"])
    settings = Settings(**overrides)
    assert settings.port == 8080 and settings.model_dir == Path("/srv/models")
    assert settings.host == "10.0.0.1"  # not given as a flag: the environment's


def test_logging_config_routes_the_service_logger() -> None:
    config = logging_config("warning")
    assert config["loggers"]["service"]["level"] == "WARNING"
    assert config["loggers"]["service"]["handlers"] == ["default"]

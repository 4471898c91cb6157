"""service/config.py and `python -m service` flags: every setting is an MRI_* variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.__main__ import logging_config, main, parse_args
from service.config import Settings, default_model_dir

REPO = Path(__file__).resolve().parents[2]


def test_environment_variables_set_every_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    values = {
        "MRI_HOST": "0.0.0.0", "MRI_PORT": "9001", "MRI_MODEL_DIR": str(tmp_path),
        "MRI_MODEL_NAME": "brain-tumor-cnn", "MRI_MAX_BATCH_SIZE": "16", "MRI_MAX_WAIT_MS": "0",
        "MRI_BUSY_WAIT_MS": "2.5",
        "MRI_QUEUE_SIZE": "64", "MRI_MAX_UPLOAD_BYTES": "1000",
        "MRI_MAX_BATCH_UPLOAD_BYTES": "5000",
        "MRI_MAX_PIXELS": "1000000", "MRI_MAX_BATCH_FILES": "8", "MRI_API_KEY": "zq-secret-9",
        "MRI_CORS_ORIGINS": "https://a.example,https://b.example", "MRI_LOG_LEVEL": "WARNING",
        "MRI_ACCESS_LOG": "false", "MRI_TF_INTRA_OP_THREADS": "2", "MRI_TF_INTER_OP_THREADS": "1",
        "MRI_DECODE_THREADS": "3", "MRI_EXPLAIN_THREADS": "1", "MRI_RETRY_AFTER_SECONDS": "5",
        "MRI_GRACEFUL_SHUTDOWN_SECONDS": "3", "MRI_MAX_HEADER_BYTES": "4096",
        "MRI_HEADER_TIMEOUT_SECONDS": "5", "MRI_BODY_TIMEOUT_SECONDS": "30",
        "MRI_MAX_CONNECTIONS": "64", "MRI_LOG_FORMAT": "json", "MRI_EXIT_ON_LOAD_FAILURE": "false",
        "MRI_DECODE_MEMORY_BYTES": "33554432",
        "MRI_MODEL_VERSION": "2",
        "MRI_MODEL_POLL_SECONDS": "0.5", "MRI_INPUT_GATE": "Report", "MRI_GC_FREEZE": "false",
        "MRI_FREEZE_GRAPH": "false",
        "MRI_OPERATING_POINT": "balanced",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert {f"MRI_{name.upper()}" for name in Settings.model_fields} == set(values)
    assert settings.host == "0.0.0.0" and settings.port == 9001
    assert settings.operating_point == "balanced"
    assert settings.model_dir == tmp_path and settings.model_name == "brain-tumor-cnn"
    assert (settings.max_batch_size, settings.max_wait_ms, settings.queue_size) == (16, 0, 64)
    assert settings.busy_wait_ms == 2.5
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "zq-secret-9"
    assert "zq-secret-9" not in repr(settings)  # the key never shows in logs or tracebacks
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.log_level == "warning" and settings.access_log is False
    assert (settings.tf_intra_op_threads, settings.decode_threads) == (2, 3)
    assert (settings.max_header_bytes, settings.max_connections) == (4096, 64)
    assert (settings.header_timeout_seconds, settings.body_timeout_seconds) == (5, 30)
    assert settings.log_format == "json" and settings.exit_on_load_failure is False
    assert (settings.model_version, settings.model_poll_seconds) == (2, 0.5)
    assert settings.input_gate == "report"
    assert settings.gc_freeze is False and settings.freeze_graph is False
    assert settings.explain_threads == 1


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"MRI_{name.upper()}", raising=False)
    settings = Settings()
    assert settings.model_dir == default_model_dir() == REPO / "models"
    assert settings.max_batch_files == 32
    assert settings.api_key is None and settings.cors_origins == []
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.input_gate == "enforce"
    assert settings.gc_freeze is True and settings.freeze_graph is True
    assert settings.busy_wait_ms == 5.0


def test_empty_optional_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRI_API_KEY", "")
    monkeypatch.setenv("MRI_MODEL_NAME", "")
    monkeypatch.setenv("MRI_CORS_ORIGINS", "")
    monkeypatch.setenv("MRI_MAX_BATCH_SIZE", "")  # e.g. compose passing an unset variable on
    settings = Settings()
    assert settings.api_key is None and settings.model_name is None
    assert settings.cors_origins == []
    assert settings.max_batch_size == 16
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


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    return int(stopped.value.code or 0), capsys.readouterr().err.strip().splitlines()


def test_a_bad_setting_is_one_line_and_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run_main(["--port", "70000"], capsys)
    assert code == 2 and len(lines) == 1
    assert "MRI_PORT (--port)=70000" in lines[0] and "65535" in lines[0]
    monkeypatch.setenv("MRI_LOG_FORMAT", "xml")
    code, lines = run_main([], capsys)
    assert code == 2 and len(lines) == 1
    assert "MRI_LOG_FORMAT='xml'" in lines[0] and "'json'" in lines[0]


def test_a_batch_larger_than_the_queue_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MRI_QUEUE_SIZE", "8")
    monkeypatch.setenv("MRI_MAX_BATCH_FILES", "16")
    code, lines = run_main([], capsys)
    assert code == 2 and len(lines) == 1
    assert "MRI_QUEUE_SIZE (8)" in lines[0] and "MRI_MAX_BATCH_FILES (16)" in lines[0]


@pytest.mark.parametrize(("value", "message"), [
    ("default", "leave MRI_OPERATING_POINT unset"), (" balanced", "without spaces"),
])
def test_an_operating_point_that_cannot_be_a_name_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str,
    message: str,
) -> None:
    monkeypatch.setenv("MRI_OPERATING_POINT", value)
    code, lines = run_main([], capsys)
    assert code == 2 and len(lines) == 1
    assert "MRI_OPERATING_POINT" in lines[0] and message in lines[0]


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "a\\b"])
def test_model_names_with_path_separators_are_refused(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run_main(["--model-name", name], capsys)
    assert code == 2 and len(lines) == 1 and "MRI_MODEL_NAME (--model-name)" in lines[0]


def test_the_api_key_is_never_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MRI_API_KEY", "x" * 5)
    monkeypatch.setattr(Settings, "model_fields", Settings.model_fields)  # unchanged
    monkeypatch.setenv("MRI_PORT", "-1")
    code, lines = run_main([], capsys)
    assert code == 2 and not any("xxxxx" in line for line in lines)

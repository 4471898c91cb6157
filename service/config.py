"""The service's settings: one typed class, read from `MRI_*` environment variables and flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.cpus import available_cpus, default_decode_threads, default_tf_threads
from service.gate import GateMode

MiB = 1024 * 1024


def default_model_dir() -> Path:
    """The repository's `models/` when running from a checkout, else `./models` (relative to
    the working directory), so an installed package still finds a model folder beside it."""
    checkout_models = Path(__file__).resolve().parent.parent / "models"
    if (checkout_models.parent / "pyproject.toml").is_file() and checkout_models.is_dir():
        return checkout_models
    return Path("models")


def _default_intra_op() -> int:
    return default_tf_threads(available_cpus())[0]


def _default_inter_op() -> int:
    return default_tf_threads(available_cpus())[1]


def _default_decode_threads() -> int:
    return default_decode_threads(available_cpus())


class Settings(BaseSettings):
    """Every setting is also an environment variable: `MRI_` + the field name in capitals."""

    # An empty variable (e.g. passed through by compose from an unset shell one) means unset.
    model_config = SettingsConfigDict(
        env_prefix="MRI_", env_ignore_empty=True, extra="ignore", protected_namespaces=()
    )

    host: str = Field(
        default="127.0.0.1", description="Address to listen on (0.0.0.0 in a container)."
    )
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port to listen on.")
    model_dir: Path = Field(
        default_factory=default_model_dir,
        description="Folder holding `<name>/<version>/` SavedModels (TF Serving layout).",
    )
    model_name: str | None = Field(
        default=None,
        description="Which model under model_dir to serve; needed only when there are several.",
    )
    model_version: int | None = Field(
        default=None, ge=1,
        description="Serve this version only (unset: the highest, and newer ones as they appear).",
    )
    model_poll_seconds: float = Field(
        default=0.0, ge=0,
        description="How often to look for a new model version (0: never; POST /admin/reload "
        "still works).",
    )
    max_batch_size: int = Field(
        default=16, ge=1, description="Most images the model sees in one call (every size up "
        "to it is warmed up before the service is ready)."
    )
    max_wait_ms: float = Field(
        default=0.0, ge=0, description="Longest the oldest queued image waits for others."
    )
    busy_wait_ms: float = Field(
        default=5.0, ge=0, description="After a full batch (the service is saturated), how "
        "long the next batch's oldest image waits for others to fill it; 0: never. Requests "
        "that arrive alone never wait."
    )
    queue_size: int = Field(
        default=1024, ge=1, description="Images waiting for the model at most; beyond it: 503."
    )
    max_upload_bytes: int = Field(
        default=16 * MiB, ge=1, description="Largest image file, in bytes."
    )
    max_batch_upload_bytes: int = Field(
        default=64 * MiB, ge=1, description="Largest /predict/batch request body, in bytes."
    )
    max_pixels: int = Field(
        default=25_000_000, ge=1, description="Largest image (width x height), read from the "
        "header before decoding."
    )
    max_batch_files: int = Field(
        default=32, ge=1, description="Most files in one /predict/batch request."
    )
    operating_point: str | None = Field(
        default=None,
        description="Default operating point (e.g. screening or balanced) when a request names "
        "none; unset: the model card's default. When the served model's card does not define "
        "it, a warning is logged as the model loads (start-up, reload) and the card's default "
        "is used.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="When set, the prediction routes (/predict, /v2 infer) and "
        "/admin/reload require it in the X-API-Key header."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins allowed by CORS; empty turns CORS off.",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", description="Log level of the service and uvicorn."
    )
    access_log: bool = Field(
        default=True, description="Log one line per request (method, path, status)."
    )
    tf_intra_op_threads: int = Field(
        default_factory=_default_intra_op, ge=0, description="TensorFlow threads inside one "
        "op (default: half the CPUs the service may use, at least 1); 0 lets TensorFlow choose."
    )
    tf_inter_op_threads: int = Field(
        default_factory=_default_inter_op, ge=0, description="TensorFlow ops run in parallel "
        "(default: 2, or 1 on one CPU); 0 lets TensorFlow choose."
    )
    decode_threads: int = Field(
        default_factory=_default_decode_threads,
        ge=1,
        description="Threads that check and convert uploads (default: the CPUs the service may "
        "use, at most 4).",
    )
    decode_memory_bytes: int = Field(
        default=256 * MiB, ge=16 * MiB, description="Memory the uploads being decoded may hold "
        "at once (estimated from their headers); a decode that does not fit waits its turn."
    )
    gc_freeze: bool = Field(
        default=True, description="Once the model is loaded and warmed up, exempt every "
        "object alive then from garbage collection (no stop-the-world re-scans of them)."
    )
    freeze_graph: bool = Field(
        default=True, description="Serve the model's signatures with their weights folded in "
        "as constants, so TensorFlow fuses each batch normalisation and ReLU into the "
        "convolution (faster; answers agree with the SavedModel's to about 1e-6). false "
        "serves the signatures as exported.",
    )
    explain_threads: int = Field(
        default=2,
        ge=1,
        description="Threads that run /explain (one image each, beside the /predict batcher); "
        "at most MRI_QUEUE_SIZE explanations wait for them.",
    )
    retry_after_seconds: int = Field(
        default=2, ge=0, description="Retry-After on 503 answers (not ready, queue full)."
    )
    input_gate: GateMode = Field(
        default=GateMode.ENFORCE,
        description="The brain-MRI input gate: enforce (refuse images that fail it, 422), "
        "report (answer them with input_check.passed false) or off.",
    )
    graceful_shutdown_seconds: float = Field(
        default=8.0, ge=0, description="On SIGTERM, how long in-flight requests may take."
    )
    max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, description="Largest request line and headers, in bytes "
        "(more: 431 and the connection is closed)."
    )
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest a connection may take to send a request's "
        "headers (longer: 408 and the connection is closed)."
    )
    body_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Longest a request may take to send its body (longer: "
        "408 and the connection is closed)."
    )
    max_connections: int = Field(
        default=128, ge=1, description="Open connections (or requests in progress) at most; "
        "a request beyond it gets 503 + Retry-After."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="`text` lines, or `json`: one JSON object per line."
    )
    exit_on_load_failure: bool = Field(
        default=True, description="End the process (status 3) when the model cannot be loaded; "
        "false keeps it live and not ready."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("log_level", "input_gate", mode="before")
    @classmethod
    def lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("model_name", "api_key", "model_version", "operating_point",
                     mode="before")
    @classmethod
    def empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("operating_point")
    @classmethod
    def plain_operating_point(cls, value: str | None) -> str | None:
        # Whether the card defines it is checked when a model loads (a warning, then the
        # card's default): a reload may bring a card that does.
        if value is None:
            return None
        if value.strip() != value or not value:
            raise ValueError("must be an operating point's name, without spaces around it")
        if value == "default":
            raise ValueError("'default' names no operating point: leave MRI_OPERATING_POINT "
                             "unset for the model card's default")
        return value

    @field_validator("model_name")
    @classmethod
    def plain_model_name(cls, value: str | None) -> str | None:
        # The name is a folder under model_dir: a separator or ".." would reach outside it.
        if value is not None and (value in {".", ".."} or "/" in value or "\\" in value):
            raise ValueError("must be a folder name under MRI_MODEL_DIR, without / \\ or ..")
        return value

    @model_validator(mode="after")
    def batch_fits_in_queue(self) -> Self:
        # A batch is queued whole or not at all: one larger than the queue could never fit.
        if self.queue_size < self.max_batch_files:
            raise ValueError(
                f"MRI_QUEUE_SIZE ({self.queue_size}) must be at least MRI_MAX_BATCH_FILES "
                f"({self.max_batch_files}): a larger batch could never be queued"
            )
        return self

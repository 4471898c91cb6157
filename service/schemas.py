"""The JSON bodies the service answers with (request bodies are multipart uploads)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.problems import ProblemDetails


class ModelRef(BaseModel):
    name: str = Field(description="The served model's name (its folder under the model dir).")
    version: int = Field(description="The served version (the highest numeric folder).")


class Prediction(BaseModel):
    label: str = Field(description="The model card's positive class when tumor_probability >= "
                       "threshold, else the other class.", examples=["tumor"])
    tumor_probability: float = Field(ge=0.0, le=1.0, description="P(tumor), in [0, 1].")
    threshold: float = Field(ge=0.0, le=1.0, description="The model card's decision threshold.")
    model: ModelRef


class BatchItem(BaseModel):
    """One file's outcome: the fields of a prediction, or `error` for that file alone."""

    filename: str = Field(description="The file name the client sent (may be empty).")
    label: str | None = None
    tumor_probability: float | None = Field(default=None, ge=0.0, le=1.0)
    threshold: float | None = None
    model: ModelRef | None = None
    error: ProblemDetails | None = None


class BatchPrediction(BaseModel):
    results: list[BatchItem] = Field(description="One entry per file, in request order.")
    model: ModelRef


class Liveness(BaseModel):
    status: Literal["live"] = "live"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    model: ModelRef

"""The JSON bodies the service answers with (request bodies are multipart uploads)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from service.gate import GateStatus
from service.problems import ProblemDetails


class ModelRef(BaseModel):
    name: str = Field(description="The served model's name (its folder under the model dir).")
    version: int = Field(description="The served version (the highest numeric folder).")


class DicomRef(BaseModel):
    """A DICOM input's identity: its UIDs and modality, and nothing else from its header."""

    sop_instance_uid: str | None = Field(description="SOP Instance UID (0008,0018).")
    series_instance_uid: str | None = Field(description="Series Instance UID (0020,000E).")
    study_instance_uid: str | None = Field(description="Study Instance UID (0020,000D).")
    modality: str | None = Field(description="Modality (0008,0060).", examples=["MR"])


DICOM_FIELD_DESCRIPTION = (
    "For a DICOM upload: the object's UIDs and modality (no patient data); null otherwise."
)


class InputCheck(BaseModel):
    """The brain-MRI input gate's verdict on the image (null when the model has no gate or
    MRI_INPUT_GATE=off)."""

    brain_mri_score: float = Field(description="Higher is more like the brain MRI slices the "
                                   "model was trained on.")
    brain_mri_threshold: float = Field(description="The model card's gate threshold.")
    passed: bool = Field(description="brain_mri_score >= brain_mri_threshold. False only with "
                         "MRI_INPUT_GATE=report: in enforce mode such an image is refused (422).")


class Prediction(BaseModel):
    label: str = Field(description="The model card's positive class when tumor_probability >= "
                       "threshold, else the other class.", examples=["tumor"])
    tumor_probability: float = Field(ge=0.0, le=1.0, description="P(tumor), in [0, 1].")
    threshold: float = Field(ge=0.0, le=1.0, description="The decision threshold applied: the "
                             "operating point's, or the model card's when it has none.")
    operating_point: str | None = Field(
        default=None, description="The operating point used (`screening`, `balanced`, ...); "
        "null for a model whose card defines none.", examples=["screening"])
    model: ModelRef
    dicom: DicomRef | None = Field(default=None, description=DICOM_FIELD_DESCRIPTION)
    input_check: InputCheck | None = Field(
        default=None, description="The input gate's verdict; null when the model has no gate "
        "or MRI_INPUT_GATE=off.")


class Heatmap(BaseModel):
    """Grad-CAM evidence for `tumor` on the uploaded image's own grid (after EXIF rotation)."""

    width: int = Field(ge=1, description="The uploaded image's width, in pixels.")
    height: int = Field(ge=1, description="The uploaded image's height, in pixels.")
    png_base64: str = Field(description="An 8-bit greyscale PNG of width x height, base64: 0 = "
                            "no evidence, 255 = the strongest evidence for tumor in this image.")


class Explanation(Prediction):
    """Every field of a prediction, plus the heatmap that explains it."""

    heatmap: Heatmap


class BatchItem(BaseModel):
    """One file's outcome: the fields of a prediction, or `error` for that file alone."""

    filename: str = Field(description="The file name the client sent (may be empty).")
    frame: int | None = Field(
        default=None, ge=1, description="For a DICOM upload: the frame this result is for, "
        "from 1 (a multi-frame file gets one result per frame)."
    )
    label: str | None = None
    tumor_probability: float | None = Field(default=None, ge=0.0, le=1.0)
    threshold: float | None = None
    operating_point: str | None = None
    model: ModelRef | None = None
    dicom: DicomRef | None = None
    input_check: InputCheck | None = None
    error: ProblemDetails | None = None


class BatchPrediction(BaseModel):
    results: list[BatchItem] = Field(
        description="One entry per file (per frame of a multi-frame DICOM file), in request order."
    )
    model: ModelRef


class Liveness(BaseModel):
    status: Literal["live"] = "live"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    model: ModelRef
    input_gate: GateStatus = Field(
        description="What the brain-MRI input gate does (MRI_INPUT_GATE), or absent when the "
        "served model has no gate.")

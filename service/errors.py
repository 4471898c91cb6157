"""What can go wrong in the service's core, said without HTTP.

The core (images.py, runtime.py, model.py, batching.py) raises these; each carries a stable,
machine-readable `reason` (used for the problem type and the rejected-inputs metric), a
sentence for the user (`detail`) and the extra fields a client may act on (`fields`), but no
status code. service/problems.py is the one place that maps them to HTTP, as KServe's
errors.py does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class ServiceError(Exception):
    """Base of the domain errors: `reason`, `detail` and extra `fields`, never a status."""

    reason: ClassVar[str] = "error"

    def __init__(self, detail: str, **fields: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields


# The client's input is at fault: it will fail again if sent again.


class InvalidInput(ServiceError):
    """An upload or request the service refuses; sending it again will not help."""

    reason = "invalid_input"


class EmptyFile(InvalidInput):
    reason = "empty_file"

    def __init__(self) -> None:
        super().__init__("The file is empty.")


class FileTooLarge(InvalidInput):
    reason = "file_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"The file is {size} bytes, over the limit of {limit} bytes.", limit_bytes=limit
        )


class UnsupportedFormat(InvalidInput):
    reason = "unsupported_format"

    def __init__(self, accepted: Sequence[str]) -> None:
        super().__init__(
            "The file is not an image in an accepted format. Accepted formats: "
            + ", ".join(accepted) + ".",
            accepted_formats=list(accepted),
        )


class TooManyPixels(InvalidInput):
    reason = "too_many_pixels"

    def __init__(
        self, limit: int, width: int | None = None, height: int | None = None,
        detail: str | None = None,
    ) -> None:
        if detail is None and (width is None or height is None):
            detail = f"The image has more than the limit of {limit} pixels."
        elif detail is None:
            detail = (f"The image is {width}x{height} = {(width or 0) * (height or 0)} pixels, "
                      f"over the limit of {limit} pixels.")
        super().__init__(detail)


class Undecodable(InvalidInput):
    """The bytes claim an accepted format but cannot be decoded (by Pillow or the model)."""

    reason = "undecodable"


class TooManyFiles(InvalidInput):
    reason = "too_many_files"

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"The request has {count} files; at most {limit} are accepted.", max_files=limit
        )


class SeveralFiles(InvalidInput):
    """/predict got more than one `file` part (FastAPI would answer for the last alone)."""

    reason = "several_files"

    def __init__(self, count: int) -> None:
        super().__init__(
            f"The request has {count} `file` parts; send exactly one (/predict/batch takes "
            "several)."
        )


class UnsupportedTransferSyntax(InvalidInput):
    """A DICOM file whose pixel data is encoded in a way no installed decoder reads."""

    reason = "unsupported_transfer_syntax"

    def __init__(self, detail: str, uid: str | None) -> None:
        super().__init__(detail, transfer_syntax_uid=uid)


class UnsupportedModality(InvalidInput):
    """A DICOM image of another modality than MR (a CT, an X-ray...)."""

    reason = "unsupported_modality"

    def __init__(self, detail: str, modality: str | None, accepted: Sequence[str]) -> None:
        super().__init__(detail, modality=modality, accepted_modalities=list(accepted))


class NoPixelData(InvalidInput):
    """A DICOM object without an image (a structured report, an RT plan...)."""

    reason = "no_pixel_data"


class UnsupportedPixels(InvalidInput):
    """DICOM pixel data that is not greyscale (colour, palette) or has invalid attributes."""

    reason = "unsupported_pixels"


class Truncated(InvalidInput):
    """A file that ends before its data does (an interrupted copy or upload)."""

    reason = "truncated"


class MultiFrame(InvalidInput):
    """A multi-frame DICOM object sent to the one-image route."""

    reason = "multi_frame"

    def __init__(self, frames: int, batch_route: str, route: str = "/predict") -> None:
        super().__init__(
            f"The DICOM file holds {frames} frames; {route} takes one image. Send it to "
            f"{batch_route} for one prediction per frame.",
            frames=frames,
            batch_route=batch_route,
        )


class FrameOutOfRange(InvalidInput):
    reason = "frame_out_of_range"

    def __init__(self, frame: int, frames: int) -> None:
        super().__init__(f"Frame {frame} was asked for; the file has {frames}.", frames=frames)


class NotAcceptable(InvalidInput):
    """The client asked for a representation the service cannot make for this input."""

    reason = "not_acceptable"

    def __init__(self, detail: str, available: Sequence[str]) -> None:
        super().__init__(detail, available_media_types=list(available))


class UnknownOperatingPoint(InvalidInput):
    """`?operating_point=` names a point the served model's card does not define."""

    reason = "unknown_operating_point"

    def __init__(self, requested: str, available: Sequence[str]) -> None:
        known = ", ".join(available) if available else "none (it uses its card's threshold)"
        super().__init__(
            f"The served model has no operating point '{requested}'. Its operating points: "
            f"{known}.",
            operating_point=requested,
            available_operating_points=list(available),
        )


class NotBrainMRI(InvalidInput):
    """The model's input gate scores the image below the card's threshold: it does not look
    like the brain MRI slices the model was trained on, so no label is given."""

    reason = "not_brain_mri"

    def __init__(self, score: float, threshold: float) -> None:
        super().__init__(
            "The image does not look like a 2-D brain MRI slice, which is the only input this "
            f"model can judge (its brain-MRI score {score:.3f} is below the threshold "
            f"{threshold:.3f}). Upload one axial, coronal or sagittal MRI slice of the head.",
            brain_mri_score=score,
            brain_mri_threshold=threshold,
        )
        self.score = score
        self.threshold = threshold


class InvalidInferenceRequest(InvalidInput):
    """An Open Inference Protocol request that does not follow the protocol or this model's
    inputs (wrong tensor name, type or shape, bad base64, inconsistent binary data)."""

    reason = "invalid_inference_request"


class ModelNotFound(ServiceError):
    """A request names a model or version this server does not serve."""

    reason = "model_not_found"


class ModelReloadFailed(ServiceError):
    """A new model version was refused (it did not load or warm up); the serving one goes on."""

    reason = "model_reload_failed"

    def __init__(self, where: str, serving_version: int, why: str) -> None:
        super().__init__(
            f"The model version at {where} was refused ({why}); version {serving_version} "
            "keeps serving.",
            serving_version=serving_version,
        )


class Unauthenticated(ServiceError):
    """The route needs the API key and the request lacks it (or sent a wrong one)."""

    reason = "unauthorized"

    def __init__(self, header: str) -> None:
        super().__init__(f"A valid API key is required in the {header} header.")
        self.header = header


# The service cannot answer now: the same request may succeed later.


class Unavailable(ServiceError):
    """A temporary refusal; clients should retry after a while."""

    reason = "unavailable"


class ModelNotReady(Unavailable):
    reason = "not_ready"

    def __init__(self, why: str, state: str) -> None:
        super().__init__(f"The service is not ready: {why}.", state=state)


class QueueFull(Unavailable):
    """The batcher's queue has no room for the request's images (or it is shutting down)."""

    reason = "queue_full"

    def __init__(self, why: str = "the queue is full") -> None:
        super().__init__("The service is at capacity (the queue is full); retry shortly.")
        self.why = why


class BatcherStopped(QueueFull):
    """The batcher is shutting down and takes no new work."""

    def __init__(self) -> None:
        super().__init__("the model worker is shutting down")


# The served model cannot do what the route asks, whatever the input.


class ExplainUnsupported(ServiceError):
    """The served model has no `explain` signature (it was exported before explanations)."""

    reason = "explain_unsupported"

    def __init__(self, name: str, version: int) -> None:
        super().__init__(
            f"Model {name} version {version} has no explain signature (it was exported before "
            "explanations existed); /predict still answers for it.",
            model={"name": name, "version": version},
        )


# Not a request's fault: the model cannot be served at all.


class ModelLoadError(RuntimeError):
    """The model folder is missing, ambiguous or corrupt; the message says which and where."""

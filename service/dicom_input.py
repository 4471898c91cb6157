"""DICOM uploads: the contract's pixel rule (model_contract/dicom.py) applied to an upload, and
its refusals said as the service's domain errors (service/errors.py).

A DICOM file becomes one prepared image per frame, each the canonical 8-bit PNG the model
decodes, carrying the object's identity (UIDs and modality only) for the answer. Nothing from
the header other than that identity reaches this module, so nothing else can reach a response,
a log line or a metric.
"""

from __future__ import annotations

from collections.abc import Callable

from model_contract import dicom
from service.errors import (
    InvalidInput,
    NoPixelData,
    TooManyPixels,
    Truncated,
    Undecodable,
    UnsupportedModality,
    UnsupportedPixels,
    UnsupportedTransferSyntax,
)
from service.images import PreparedImage

DICOM_FORMAT = "DICOM"
# A DICOM frame's PNG lives for one request: stored, not compressed (issue 17: the server's CPU
# per DICOM upload fell from 18.9 to 15.4 ms at concurrency 1 and 15.8 to 12.8 ms at 32,
# docs/benchmarks.md); the pixels are the same at every level, only /convert's download grows.
FRAME_PNG_LEVEL = 0


def _transfer_syntax(error: dicom.DicomError) -> InvalidInput:
    assert isinstance(error, dicom.UnsupportedTransferSyntax)
    return UnsupportedTransferSyntax(str(error), error.transfer_syntax)


def _modality(error: dicom.DicomError) -> InvalidInput:
    assert isinstance(error, dicom.UnsupportedModality)
    return UnsupportedModality(str(error), error.modality, dicom.ACCEPTED_MODALITIES)


def _pixels(error: dicom.DicomError) -> InvalidInput:
    assert isinstance(error, dicom.TooManyPixels)
    return TooManyPixels(error.limit, detail=str(error))


DOMAIN_ERRORS: dict[type[dicom.DicomError], Callable[[dicom.DicomError], InvalidInput]] = {
    dicom.UnsupportedTransferSyntax: _transfer_syntax,
    dicom.UnsupportedModality: _modality,
    dicom.TooManyPixels: _pixels,
    dicom.NoPixelData: lambda error: NoPixelData(str(error)),
    dicom.UnsupportedPixels: lambda error: UnsupportedPixels(str(error)),
    dicom.TruncatedDicom: lambda error: Truncated(str(error)),
}


def domain_error(error: dicom.DicomError) -> InvalidInput:
    """The rule's refusal as the service's: same reason, same sentence, no HTTP."""
    make = DOMAIN_ERRORS.get(type(error))
    return make(error) if make is not None else Undecodable(str(error))


def prepare_dicom(data: bytes, max_pixels: int) -> list[PreparedImage]:
    """One prepared image per frame of a DICOM file; raise an InvalidInput when it fails."""
    try:
        slices = dicom.read_dicom(data, max_pixels)
    except dicom.DicomError as error:
        raise domain_error(error) from None
    return [
        PreparedImage(
            canonical=dicom.frame_png(frame, compress_level=FRAME_PNG_LEVEL),
            format=DICOM_FORMAT,
            mode="L",
            width=frame.shape[1],
            height=frame.shape[0],
            converted=True,
            dicom=slices.identity,
            frame=number,
        )
        for number, frame in enumerate(slices.frames, start=1)
    ]

"""Reading image files into the canonical bytes the exported graph decodes.

The rules themselves are the contract's, shared with the service: model_contract/canonical.py
for ordinary images, model_contract/dicom.py for DICOM files (recognised from their bytes, as
the service does). This module opens each file once, turns failures into `UnreadableImage` with
a reason, and records the stored file's metadata for the metadata-only baseline.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from model_contract import canonical_from_image, load_image
from model_contract.dicom import DicomError, frame_png, is_dicom, read_dicom


class UnreadableImage(ValueError):
    """The bytes are not an image Pillow can open and decode; the message says why."""


@dataclass(frozen=True)
class ImageMetadata:
    width: int
    height: int
    mode: str
    format: str


@dataclass(frozen=True)
class ReadImage:
    """One decoded file: its canonical bytes and what it was as stored."""

    canonical: bytes
    metadata: ImageMetadata
    study_uid: str | None = None  # a DICOM file's Study Instance UID, for grouping


def _read_dicom(data: bytes) -> ReadImage:
    """A single-frame MR DICOM file as the 8-bit slice a viewer shows (the contract's rule).
    A multi-frame file is refused: its frames would share one near-duplicate group only by
    luck, so they must be exported as files of their own to be split honestly."""
    try:
        slices = read_dicom(data)
    except DicomError as error:
        raise UnreadableImage(f"DICOM: {error}") from error
    frames = slices.frames
    if len(frames) != 1:
        raise UnreadableImage(
            f"a multi-frame DICOM file ({len(frames)} frames); save one frame per file to "
            "train on it"
        )
    height, width = frames[0].shape
    metadata = ImageMetadata(width, height, "L", "DICOM")
    return ReadImage(frame_png(frames[0]), metadata, slices.identity.study_instance_uid)


def read_image(data: bytes) -> ReadImage:
    """Decode the file once; raise UnreadableImage when it cannot be."""
    if is_dicom(data):
        return _read_dicom(data)
    try:
        with Image.open(io.BytesIO(data)) as image:
            metadata = ImageMetadata(
                image.width, image.height, image.mode, image.format or "UNKNOWN"
            )
            load_image(image)
            canonical, _ = canonical_from_image(image, data)
    except UnidentifiedImageError as error:
        raise UnreadableImage("not a recognised image format") from error
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UnreadableImage(f"cannot decode image: {error}") from error
    return ReadImage(canonical, metadata)


def canonical_bytes(data: bytes) -> bytes:
    """The input itself, or a lossless 8-bit PNG of it (the contract's rule)."""
    return read_image(data).canonical


def image_metadata(data: bytes) -> ImageMetadata:
    """Width, height, colour mode and container format, read from the bytes."""
    return read_image(data).metadata

"""Reading image files into the canonical bytes the exported graph decodes.

The rule itself is the contract's (model_contract/canonical.py), shared with the service; this
module opens each file once, turns Pillow's failures into `UnreadableImage` with a reason, and
records the stored file's metadata for the metadata-only baseline.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from model_contract import canonical_from_image, load_image


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


def read_image(data: bytes) -> ReadImage:
    """Decode the file once; raise UnreadableImage when Pillow cannot."""
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

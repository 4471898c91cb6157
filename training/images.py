"""Reading image files into the canonical bytes the exported graph decodes.

The serving signature decodes PNG and JPEG itself. Every other file (BMP, TIFF, GIF, WebP,
16-bit greyscale, CMYK, EXIF-rotated JPEG) is turned into PNG bytes first, by the rule in
docs/model-contract.md. The service applies the same rule on its side of the seam; a test
checks that the two agree byte for byte.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Formats and modes TensorFlow's decode_image handles as they are.
PASSTHROUGH_FORMATS = frozenset({"PNG", "JPEG"})
PASSTHROUGH_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA"})
EXIF_ORIENTATION_TAG = 0x0112


class UnreadableImage(ValueError):
    """The bytes are not an image Pillow can open and decode; the message says why."""


@dataclass(frozen=True)
class ImageMetadata:
    width: int
    height: int
    mode: str
    format: str


def _open(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except UnidentifiedImageError as error:
        raise UnreadableImage("not a recognised image format") from error
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UnreadableImage(f"cannot decode image: {error}") from error
    return image


def image_metadata(data: bytes) -> ImageMetadata:
    """Width, height, colour mode and container format, read from the bytes."""
    image = _open(data)
    return ImageMetadata(image.width, image.height, image.mode, image.format or "UNKNOWN")


def _to_8bit(image: Image.Image) -> Image.Image:
    if image.mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        # 16-bit (or 32-bit) greyscale: scale 0..65535 onto 0..255, rounding to nearest.
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")
    if image.mode in {"CMYK", "YCbCr", "LAB", "HSV"}:
        return image.convert("RGB")
    if image.mode in {"LA", "PA", "RGBA", "P"}:
        return image.convert("RGBA") if "A" in image.mode or "transparency" in image.info \
            else image.convert("RGB")
    if image.mode == "1":
        return image.convert("L")
    return image


def canonical_bytes(data: bytes) -> bytes:
    """Return bytes the exported graph can decode: the input itself, or a lossless PNG."""
    image = _open(data)
    orientation = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    if image.format in PASSTHROUGH_FORMATS and image.mode in PASSTHROUGH_MODES \
            and orientation == 1:
        return data
    image = _to_8bit(ImageOps.exif_transpose(image))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()

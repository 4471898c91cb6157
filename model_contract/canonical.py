"""The canonical-bytes rule: any accepted image -> bytes the exported graph decodes.

TensorFlow decodes 8-bit PNG and JPEG in any channel count. Those pass through unchanged when
their mode is one TensorFlow reads and no EXIF orientation other than 1 is set; anything else
(BMP, TIFF, GIF, WebP, 16-bit greyscale, CMYK, an EXIF-rotated JPEG...) is opened with Pillow,
EXIF orientation applied, converted to 8-bit and saved as PNG. Training and the service both
call this module, so the model sees the same bytes on both sides.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from model_contract.signature import ACCEPTED_ENCODINGS

PASSTHROUGH_FORMATS = frozenset(ACCEPTED_ENCODINGS)
PASSTHROUGH_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA"})
EXIF_ORIENTATION_TAG = 0x0112

_WIDE_GREY_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_RGB_LIKE_MODES = frozenset({"CMYK", "YCbCr", "LAB", "HSV"})
_ALPHA_OR_PALETTE_MODES = frozenset({"LA", "PA", "RGBA", "P"})


def passes_through(image: Image.Image) -> bool:
    """True when the opened image's own bytes reach the model (read from the header only)."""
    orientation = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    return (
        image.format in PASSTHROUGH_FORMATS
        and image.mode in PASSTHROUGH_MODES
        and orientation == 1
    )


def to_8bit(image: Image.Image) -> Image.Image:
    """8-bit greyscale, RGB or RGBA: I;16/I/F scaled by 1/257 and clipped, CMYK to RGB."""
    if image.mode in _WIDE_GREY_MODES:
        # 16-bit (or 32-bit) greyscale: scale 0..65535 onto 0..255, rounding to nearest.
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")
    if image.mode in _RGB_LIKE_MODES:
        return image.convert("RGB")
    if image.mode in _ALPHA_OR_PALETTE_MODES:
        keep_alpha = "A" in image.mode or "transparency" in image.info
        return image.convert("RGBA") if keep_alpha else image.convert("RGB")
    if image.mode == "1":
        return image.convert("L")
    return image


def canonical_from_image(image: Image.Image, data: bytes) -> tuple[bytes, bool]:
    """The canonical bytes of an opened and loaded image, and whether they were converted."""
    if passes_through(image):
        return data, False
    converted = to_8bit(ImageOps.exif_transpose(image))
    buffer = io.BytesIO()
    converted.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), True


def canonical_bytes(data: bytes) -> bytes:
    """The input itself, or a lossless 8-bit PNG of it. Pillow's errors propagate."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return canonical_from_image(image, data)[0]

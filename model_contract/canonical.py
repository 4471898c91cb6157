"""The canonical-bytes rule: any accepted image -> bytes the exported graph decodes.

TensorFlow decodes 8-bit PNG and JPEG in any channel count. Those pass through unchanged when
their mode is one TensorFlow reads, no EXIF orientation other than 1 is set and neither side
exceeds MAX_SIDE; anything else (BMP, TIFF, GIF, WebP, 16-bit or 32-bit greyscale, CMYK, an
EXIF-rotated JPEG, a very large image...) is opened with Pillow, reduced by a whole factor when
a side exceeds MAX_SIDE, EXIF orientation applied, converted to 8-bit and saved as PNG.
Training and the service both call this module, so the model sees the same bytes on both sides.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageOps

from model_contract.signature import ACCEPTED_ENCODINGS

PASSTHROUGH_FORMATS = frozenset(ACCEPTED_ENCODINGS)
PASSTHROUGH_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA"})
EXIF_ORIENTATION_TAG = 0x0112

# The model sees 128 px; every slice of the training data is at most MAX_SIDE, so for them
# (and for any usual MRI slice) the rule is unchanged. A larger image is reduced by a whole
# factor k that brings its longer side to at most REDUCED_SIDE (each canonical pixel is the
# mean of a k x k block of the upload's pixels, so the canonical grid stays the upload's grid,
# k times coarser) before anything else is done with it: a 25-megapixel upload never reaches
# the model, or a float64 array, at full size.
MAX_SIDE = 2048
REDUCED_SIDE = 1024
# Rows converted at a time from 16-bit to 8-bit, so no full-size wide copy is ever made.
_ROWS_PER_CHUNK = 256

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_RANGE_SCALED_MODES = frozenset({"I", "F"})
# Modes Image.reduce takes as they are; others are made 8-bit first.
_REDUCIBLE_MODES = frozenset({"L", "LA", "PA", "RGB", "RGBA", "CMYK", "I", "F"})
_RGB_LIKE_MODES = frozenset({"CMYK", "YCbCr", "LAB", "HSV"})
_ALPHA_OR_PALETTE_MODES = frozenset({"LA", "PA", "RGBA", "P"})


def reduction_factor(width: int, height: int) -> int:
    """1 up to MAX_SIDE, else the whole factor that brings the longer side to REDUCED_SIDE."""
    longer = max(width, height)
    return 1 if longer <= MAX_SIDE else math.ceil(longer / REDUCED_SIDE)


def passes_through(image: Image.Image) -> bool:
    """True when the opened image's own bytes reach the model (read from the header only)."""
    orientation = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    return (
        image.format in PASSTHROUGH_FORMATS
        and image.mode in PASSTHROUGH_MODES
        and orientation == 1
        and reduction_factor(*image.size) == 1
    )


def load_image(image: Image.Image) -> None:
    """Decode the pixels; a large JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's own,
    never below the reduced size), so its full-size pixels are never held in memory."""
    factor = reduction_factor(*image.size)
    if image.format == "JPEG" and factor > 1:
        width, height = image.size
        image.draft(image.mode, (math.ceil(width / factor), math.ceil(height / factor)))
    image.load()


def sixteen_bit_to_8bit(image: Image.Image) -> Image.Image:
    """0..65535 onto 0..255 (v / 257, rounded to nearest; exact in integers), a few rows at a
    time."""
    width, height = image.size
    out = np.empty((height, width), dtype=np.uint8)
    for top in range(0, height, _ROWS_PER_CHUNK):
        bottom = min(height, top + _ROWS_PER_CHUNK)
        rows = np.asarray(image.crop((0, top, width, bottom))).astype(np.uint32)
        out[top:bottom] = (rows * 2 + 257) // 514
    return Image.fromarray(out, "L")


def range_to_8bit(image: Image.Image) -> Image.Image:
    """32-bit integer or float greyscale has no fixed range (0..1, 0..4095, Hounsfield-like):
    its own minimum..maximum is scaled linearly onto 0..255; non-finite values count as the
    minimum, and a constant image becomes 0."""
    values = np.asarray(image, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return Image.new("L", image.size)
    low, high = float(values[finite].min()), float(values[finite].max())
    scaled = (np.where(finite, values, low) - low) * (255.0 / (high - low) if high > low else 0.0)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")


def to_8bit(image: Image.Image) -> Image.Image:
    """8-bit greyscale, RGB or RGBA: I;16 scaled by 1/257, I and F by their own range, CMYK to
    RGB, palette to RGB or RGBA."""
    if image.mode in _SIXTEEN_BIT_MODES:
        return sixteen_bit_to_8bit(image)
    if image.mode in _RANGE_SCALED_MODES:
        return range_to_8bit(image)
    if image.mode in _RGB_LIKE_MODES:
        return image.convert("RGB")
    if image.mode in _ALPHA_OR_PALETTE_MODES:
        keep_alpha = "A" in image.mode or "transparency" in image.info
        return image.convert("RGBA") if keep_alpha else image.convert("RGB")
    if image.mode == "1":
        return image.convert("L")
    return image


def reduce_large(image: Image.Image) -> Image.Image:
    """Reduce by `reduction_factor`. Pillow reduces
    L/LA/RGB/RGBA/CMYK/I/F as they are; 16-bit, palette and bilevel images are converted to
    8-bit first (16-bit keeps its 1/257 rule that way), all before the full-size wide copy a
    float conversion would make."""
    factor = reduction_factor(*image.size)
    if factor == 1:
        return image
    if image.mode not in _REDUCIBLE_MODES:
        image = to_8bit(image)
    return image.reduce(factor)


def canonical_from_image(image: Image.Image, data: bytes) -> tuple[bytes, bool]:
    """The canonical bytes of an opened and loaded image, and whether they were converted."""
    if passes_through(image):
        return data, False
    converted = to_8bit(ImageOps.exif_transpose(reduce_large(image)))
    buffer = io.BytesIO()
    # No ICC profile: the model ignores it, and Pillow stamps the profile it makes for a LAB
    # conversion with the current time, which would make the bytes differ from call to call.
    converted.save(buffer, format="PNG", compress_level=1, icc_profile=None)
    return buffer.getvalue(), True


def canonical_bytes(data: bytes) -> bytes:
    """The input itself, or a lossless 8-bit PNG of it. Pillow's errors propagate."""
    with Image.open(io.BytesIO(data)) as image:
        load_image(image)
        return canonical_from_image(image, data)[0]

"""Checking uploads and turning them into the canonical bytes the model's signature decodes.

The format is sniffed from the bytes (never the file name), the pixel count is read from the
header before anything is decoded, and the conversion rule is docs/model-contract.md's:
`training/images.py: canonical_bytes` applies the same rule (a test checks they agree byte for
byte); this package never imports training/, so the rule is written out again here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from service.problems import Problem

# What an upload may be. Restricting Pillow's sniffing to these also keeps plugins such as
# EPS (which would start Ghostscript) away from untrusted bytes.
ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP")
# Pillow's JPEG reader names multi-picture JPEGs (from cameras) "MPO".
OPENED_FORMATS = frozenset({*ACCEPTED_FORMATS, "MPO"})

# Formats and modes TensorFlow's decode_image handles as they are (docs/model-contract.md).
PASSTHROUGH_FORMATS = frozenset({"PNG", "JPEG"})
PASSTHROUGH_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA"})
EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class PreparedImage:
    """An upload that passed every check: the bytes to send to the model, and what it was."""

    canonical: bytes
    format: str
    mode: str
    width: int
    height: int
    converted: bool


def _to_8bit(image: Image.Image) -> Image.Image:
    if image.mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        # 16-bit (or 32-bit) greyscale: scale 0..65535 onto 0..255, rounding to nearest.
        values = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), "L")
    if image.mode in {"CMYK", "YCbCr", "LAB", "HSV"}:
        return image.convert("RGB")
    if image.mode in {"LA", "PA", "RGBA", "P"}:
        keep_alpha = "A" in image.mode or "transparency" in image.info
        return image.convert("RGBA") if keep_alpha else image.convert("RGB")
    if image.mode == "1":
        return image.convert("L")
    return image


def _passes_through(image: Image.Image) -> bool:
    """The contract's rule, read from the header: these reach the model as they are."""
    orientation = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    return (
        image.format in PASSTHROUGH_FORMATS
        and image.mode in PASSTHROUGH_MODES
        and orientation == 1
    )


def _canonical_from_loaded(image: Image.Image, data: bytes) -> tuple[bytes, bool]:
    if _passes_through(image):
        return data, False
    converted = _to_8bit(ImageOps.exif_transpose(image))
    buffer = io.BytesIO()
    converted.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue(), True


def unsupported_format_problem() -> Problem:
    accepted = list(ACCEPTED_FORMATS)
    return Problem(
        415,
        "unsupported_format",
        "The file is not an image in an accepted format. Accepted formats: "
        + ", ".join(accepted)
        + ".",
        accepted_formats=accepted,
    )


def prepare_image(data: bytes, max_pixels: int) -> PreparedImage:
    """Check one uploaded file and return its canonical bytes; raise `Problem` if it fails.

    Order matters: emptiness, then the format sniffed from the header (415), then the pixel
    count from the header (413) before any pixel is decoded, then a full decode (422).
    """
    if not data:
        raise Problem(422, "empty_file", "The file is empty.")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise unsupported_format_problem() from None
    except Image.DecompressionBombError:
        raise Problem(
            413, "too_many_pixels", f"The image has more than the limit of {max_pixels} pixels."
        ) from None
    except Exception as error:  # a header Pillow recognised but could not parse
        raise Problem(422, "undecodable", f"The image header cannot be read: {error}") from None
    with image:
        width, height = image.size
        image_format = image.format or "UNKNOWN"
        if image_format not in OPENED_FORMATS:
            raise unsupported_format_problem()
        if width * height > max_pixels:
            raise Problem(
                413,
                "too_many_pixels",
                f"The image is {width}x{height} = {width * height} pixels, over the limit of "
                f"{max_pixels} pixels.",
            )
        try:
            if image_format == "JPEG" and _passes_through(image):
                # Decoding at 1/8 scale still entropy-decodes every byte, so truncated or
                # corrupt data fails here exactly as in a full decode, at half its cost; the
                # pixels are not used (the model gets these bytes as they are).
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
                image.load()
                canonical, converted = data, False
            else:
                image.load()
                canonical, converted = _canonical_from_loaded(image, data)
        except Exception as error:  # truncated or corrupt data in an accepted format
            raise Problem(
                422,
                "undecodable",
                f"The file is a {image_format} image that cannot be decoded: {error}",
            ) from None
        return PreparedImage(canonical, image_format, image.mode, width, height, converted)


def canonical_bytes(data: bytes) -> bytes:
    """The contract's rule alone: the input itself, or a lossless 8-bit PNG of it."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return _canonical_from_loaded(image, data)[0]

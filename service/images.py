"""Checking uploads and turning them into the canonical bytes the model's signature decodes.

The format is sniffed from the bytes (never the file name), the pixel count is read from the
header before anything is decoded, and the conversion is the contract's canonical-bytes rule
(model_contract/canonical.py), the one training applies too. Failures are domain errors
(service/errors.py); the HTTP layer decides how they are answered.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from model_contract import canonical_from_image, passes_through
from service.errors import EmptyFile, TooManyPixels, Undecodable, UnsupportedFormat

# What an upload may be. Restricting Pillow's sniffing to these also keeps plugins such as
# EPS (which would start Ghostscript) away from untrusted bytes.
ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP")
# Pillow's JPEG reader names multi-picture JPEGs (from cameras) "MPO".
OPENED_FORMATS = frozenset({*ACCEPTED_FORMATS, "MPO"})


@dataclass(frozen=True)
class PreparedImage:
    """An upload that passed every check: the bytes to send to the model, and what it was."""

    canonical: bytes
    format: str
    mode: str
    width: int
    height: int
    converted: bool


def _open_header(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise EmptyFile()
    try:
        return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise UnsupportedFormat(ACCEPTED_FORMATS) from None
    except Image.DecompressionBombError:
        raise TooManyPixels(max_pixels) from None
    except Exception as error:  # a header Pillow recognised but could not parse
        raise Undecodable(f"The image header cannot be read: {error}") from None


def _decode(image: Image.Image, data: bytes) -> tuple[bytes, bool]:
    width, height = image.size
    if image.format == "JPEG" and passes_through(image):
        # Decoding at 1/8 scale still entropy-decodes every byte, so truncated or corrupt
        # data fails here exactly as in a full decode, at half its cost; the pixels are not
        # used (the model gets these bytes as they are).
        image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
        image.load()
        return data, False
    image.load()
    return canonical_from_image(image, data)


def prepare_image(data: bytes, max_pixels: int) -> PreparedImage:
    """Check one uploaded file and return its canonical bytes; raise an InvalidInput if not.

    Order matters: emptiness, then the format sniffed from the header, then the pixel count
    from the header before any pixel is decoded, then a full decode.
    """
    with _open_header(data, max_pixels) as image:
        width, height = image.size
        image_format = image.format or "UNKNOWN"
        if image_format not in OPENED_FORMATS:
            raise UnsupportedFormat(ACCEPTED_FORMATS)
        if width * height > max_pixels:
            raise TooManyPixels(max_pixels, width, height)
        try:
            canonical, converted = _decode(image, data)
        except Exception as error:  # truncated or corrupt data in an accepted format
            raise Undecodable(
                f"The file is a {image_format} image that cannot be decoded: {error}"
            ) from None
        return PreparedImage(canonical, image_format, image.mode, width, height, converted)

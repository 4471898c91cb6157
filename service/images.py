"""Checking uploads and turning them into the canonical bytes the model's signature decodes.

The format is sniffed from the bytes (never the file name), the pixel count is read from the
header before anything is decoded, and the conversion is the contract's canonical-bytes rule
(model_contract/canonical.py), the one training applies too. Failures are domain errors
(service/errors.py); the HTTP layer decides how they are answered.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from model_contract import canonical_from_image, load_image, passes_through
from model_contract.dicom import DicomIdentity
from service.errors import EmptyFile, TooManyPixels, Undecodable, UnsupportedFormat

logger = logging.getLogger("service")

# What an upload may be. Restricting Pillow's sniffing to these also keeps plugins such as
# EPS (which would start Ghostscript) away from untrusted bytes.
ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP")
# What the 415 answer lists: Pillow's formats, and DICOM (recognised by its `DICM` marker).
ADVERTISED_FORMATS = (*ACCEPTED_FORMATS, "DICOM")
# Pillow's JPEG reader names multi-picture JPEGs (from cameras) "MPO".
OPENED_FORMATS = frozenset({*ACCEPTED_FORMATS, "MPO"})
# How each accepted format's files begin: bytes that start like one of them but that Pillow
# cannot open (a broken PNG chunk CRC, a cut-off header) are a damaged image (422), not
# something else (415).
SIGNATURES = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "BMP": (b"BM",),
    "TIFF": (b"II*\x00", b"MM\x00*"),
    "GIF": (b"GIF87a", b"GIF89a"),
    "WEBP": (b"RIFF",),
}
# Bytes per pixel Pillow holds for a decoded image, by mode (multi-band modes use 4).
BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
# Room for one conversion copy (palette to RGBA, a reduction, a transposition) at its largest.
CONVERSION_BYTES_PER_PIXEL = 4


@dataclass(frozen=True)
class PreparedImage:
    """An upload that passed every check: the bytes to send to the model, and what it was."""

    canonical: bytes
    format: str
    mode: str
    width: int
    height: int
    converted: bool
    dicom: DicomIdentity | None = None  # a DICOM file's UIDs and modality, nothing else
    frame: int | None = None  # a DICOM image's frame number, from 1


def sniffed_format(data: bytes) -> str | None:
    for name, signatures in SIGNATURES.items():
        if data.startswith(signatures) and (name != "WEBP" or data[8:12] == b"WEBP"):
            return name
    return None


def _open_header(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise EmptyFile()
    try:
        return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        claimed = sniffed_format(data)
        if claimed is None:
            raise UnsupportedFormat(ADVERTISED_FORMATS) from None
        logger.info("upload starts like %s but Pillow cannot open it", claimed)
        raise Undecodable(f"The file starts like a {claimed} image but is damaged.") from None
    except Image.DecompressionBombError:
        raise TooManyPixels(max_pixels) from None
    except Exception as error:  # a header Pillow recognised but could not parse
        logger.info("unreadable image header: %r", error)
        raise Undecodable("The image header cannot be read.") from None


def _check_header(image: Image.Image, max_pixels: int) -> str:
    image_format = image.format or "UNKNOWN"
    if image_format not in OPENED_FORMATS:
        raise UnsupportedFormat(ADVERTISED_FORMATS)
    width, height = image.size
    if width * height > max_pixels:
        raise TooManyPixels(max_pixels, width, height)
    return image_format


def decode_cost(data: bytes, max_pixels: int) -> int:
    """The bytes decoding this upload holds at its peak, read from the header alone (the
    header's checks run first: an upload that fails them raises as prepare_image would)."""
    with _open_header(data, max_pixels) as image:
        _check_header(image, max_pixels)
        per_pixel = BYTES_PER_PIXEL.get(image.mode, 4) + CONVERSION_BYTES_PER_PIXEL
        return image.width * image.height * per_pixel


def _decode(image: Image.Image, data: bytes) -> tuple[bytes, bool]:
    width, height = image.size
    if image.format == "JPEG" and passes_through(image):
        # Decoding at 1/8 scale still entropy-decodes every byte, so truncated or corrupt
        # data fails here exactly as in a full decode, at half its cost; the pixels are not
        # used (the model gets these bytes as they are).
        image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
        image.load()
        return data, False
    load_image(image)
    return canonical_from_image(image, data)


def prepare_image(data: bytes, max_pixels: int) -> PreparedImage:
    """Check one uploaded file and return its canonical bytes; raise an InvalidInput if not.

    Order matters: emptiness, then the format sniffed from the header, then the pixel count
    from the header before any pixel is decoded, then a full decode. Answers say what is wrong
    in the user's terms; Pillow's own words (which may name internals) go to the log only.
    """
    with _open_header(data, max_pixels) as image:
        image_format = _check_header(image, max_pixels)
        width, height = image.size
        try:
            canonical, converted = _decode(image, data)
        except Exception as error:  # truncated or corrupt data in an accepted format
            logger.info("undecodable %s upload: %r", image_format, error)
            raise Undecodable(
                f"The file is a {image_format} image that cannot be decoded (truncated or "
                "corrupt data)."
            ) from None
        return PreparedImage(canonical, image_format, image.mode, width, height, converted)

"""The DICOM pixel rule: DICOM Part 10 bytes -> the 8-bit greyscale frames a viewer shows.

Training (`.dcm` files in class folders) and the service (DICOM uploads) both turn a DICOM
file into model input with this module, so the two cannot drift apart. For each frame, in the
order of the DICOM greyscale pipeline (PS3.4 N.2.1):

1. stored values, decoded by pydicom for any transfer syntax it has a plugin for (signed data
   comes out signed, per Pixel Representation);
2. the Modality LUT: rescale slope and intercept, or a Modality LUT sequence
   (`pydicom.pixels.apply_modality_lut`);
3. the VOI LUT: the first VOI LUT sequence item, else the first window centre and width with
   its VOI LUT function (`apply_voi` / `apply_windowing`, the halves of `apply_voi_lut`); with
   neither (or an invalid window), the frame's own minimum..maximum;
4. `MONOCHROME1` inverted (its minimum shows white);
5. rounded down to 0..255, a VOI LUT's output keeping its top 8 bits: what DCMTK's dcm2pnm (the
   reference DICOM toolkit) writes, so the PNG it exports of a slice is the model's input pixel
   for pixel (tests/service/test_no_skew.py holds this).

Enhanced (multi-frame) objects keep their rescale and window in functional groups: per-frame
values win over shared ones, which win over the top level. Presentation states are not applied.

Privacy: from the header only the identity leaves this module (SOP class, SOP instance, series
and study instance UIDs, modality), each checked against its value representation so that
nothing else can ride along in it. Patient data is never converted from its raw bytes, and no
error message quotes a header value other than those.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom import config, dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_modality_lut, apply_voi, apply_windowing
from pydicom.tag import Tag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

DICM_OFFSET = 128
DICM_MAGIC = b"DICM"
ACCEPTED_MODALITIES = ("MR",)
MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
DEFAULT_MAX_PIXELS = 100_000_000  # when the caller sets no limit: a guard against deflate bombs
DEFLATED_SYNTAX = str(DeflatedExplicitVRLittleEndian).encode()
FLOOR_TOLERANCE = 1e-6
TRUNCATED_MESSAGE = "The DICOM file is truncated: it ends before its data is complete."

# pydicom's value checks warn (and log) with the offending value quoted, which could be patient
# data; this module checks the few values it reads itself (_clean_uid, _clean_code_string).
config.settings.reading_validation_mode = config.IGNORE

_UID_PATTERN = re.compile(r"[0-9]+(\.[0-9]+)*")
_CODE_STRING_PATTERN = re.compile(r"[A-Z0-9_ ]{1,16}")
_PIXEL_DATA = Tag(0x7FE0, 0x0010)
_UNDEFINED_LENGTH = 0xFFFFFFFF
_MODALITY_LUT_KEYWORDS = ("RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence")
_VOI_KEYWORDS = ("WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence")
_FUNCTIONAL_MACROS = ("PixelValueTransformationSequence", "FrameVOILUTSequence")


class DicomError(ValueError):
    """A DICOM file this rule cannot turn into frames; `reason` is machine-readable."""

    reason = "invalid_dicom"


class NotDicom(DicomError):
    reason = "not_dicom"


class UnsupportedTransferSyntax(DicomError):
    reason = "unsupported_transfer_syntax"

    def __init__(self, transfer_syntax: str | None) -> None:
        self.transfer_syntax = transfer_syntax
        named = f"{UID(transfer_syntax).name} ({transfer_syntax})" if transfer_syntax else "none"
        super().__init__(f"The DICOM file's transfer syntax is not supported: {named}.")


class UnsupportedModality(DicomError):
    reason = "unsupported_modality"

    def __init__(self, modality: str | None) -> None:
        self.modality = modality
        shown = modality if modality is not None else "missing or not a valid code string"
        super().__init__(
            f"The DICOM file's modality is {shown}; accepted: {', '.join(ACCEPTED_MODALITIES)}."
        )


class NoPixelData(DicomError):
    reason = "no_pixel_data"


class UnsupportedPixels(DicomError):
    """Pixel data this rule does not turn into greyscale (colour, palette, bad attributes)."""

    reason = "unsupported_pixels"


class TooManyPixels(DicomError):
    reason = "too_many_pixels"

    def __init__(self, pixels: int | None, limit: int, detail: str | None = None) -> None:
        self.pixels = pixels
        self.limit = limit
        super().__init__(
            detail or f"The DICOM file holds {pixels} pixels (all frames), over the limit of "
            f"{limit}."
        )


class TruncatedDicom(DicomError):
    reason = "truncated"


class UndecodableDicom(DicomError):
    reason = "undecodable"


@dataclass(frozen=True)
class DicomIdentity:
    """What the answer may say about the object: its UIDs and modality, nothing else."""

    sop_instance_uid: str | None
    series_instance_uid: str | None
    study_instance_uid: str | None
    modality: str | None
    sop_class_uid: str | None

    def as_dict(self) -> dict[str, str | None]:
        """The four fields the API answers with (the SOP class is for the SR's reference)."""
        return {
            "sop_instance_uid": self.sop_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "study_instance_uid": self.study_instance_uid,
            "modality": self.modality,
        }


@dataclass(frozen=True)
class DicomSlices:
    """A DICOM image as the model sees it: its identity and one 8-bit frame per frame."""

    identity: DicomIdentity
    frames: tuple[np.ndarray, ...]


def is_dicom(data: bytes) -> bool:
    """DICOM Part 10: a 128-byte preamble, then `DICM`. Recognised from the bytes, never names."""
    return data[DICM_OFFSET : DICM_OFFSET + len(DICM_MAGIC)] == DICM_MAGIC


def _clean_uid(value: object) -> str | None:
    text = str(value).strip("\0 ") if value is not None else ""
    return text if len(text) <= 64 and _UID_PATTERN.fullmatch(text) else None


def _clean_code_string(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text if _CODE_STRING_PATTERN.fullmatch(text) else None


def read_identity(ds: Dataset) -> DicomIdentity:
    """The object's UIDs and modality, each only if it is a valid value of its VR."""
    return DicomIdentity(
        sop_instance_uid=_clean_uid(ds.get("SOPInstanceUID")),
        series_instance_uid=_clean_uid(ds.get("SeriesInstanceUID")),
        study_instance_uid=_clean_uid(ds.get("StudyInstanceUID")),
        modality=_clean_code_string(ds.get("Modality")),
        sop_class_uid=_clean_uid(ds.get("SOPClassUID")),
    )


def _meta_end(data: bytes) -> int | None:
    """Where the file meta information ends, from its group length (0002,0000), if stated."""
    header = data[DICM_OFFSET + 4 : DICM_OFFSET + 16]
    if len(header) < 12 or header[:8] != b"\x02\x00\x00\x00UL\x04\x00":
        return None
    return DICM_OFFSET + 16 + int(struct.unpack("<I", header[8:12])[0])


def _check_inflated_size(data: bytes, max_pixels: int | None) -> None:
    """A deflated data set is inflated whole by pydicom: refuse one that would inflate past
    what the pixel limit allows (8 bytes a pixel, plus room for the header) before it does."""
    end = _meta_end(data)
    if end is None or DEFLATED_SYNTAX not in data[DICM_OFFSET:end]:
        return
    pixel_limit = max_pixels if max_pixels is not None else DEFAULT_MAX_PIXELS
    limit = pixel_limit * 8 + (16 << 20)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflater.decompress(data[end:], limit)
    except zlib.error:
        raise UndecodableDicom("The deflated DICOM data set cannot be inflated.") from None
    if inflater.unconsumed_tail:
        raise TooManyPixels(None, pixel_limit, (
            f"The deflated DICOM data set inflates to more than {limit} bytes, more than the "
            f"limit of {pixel_limit} pixels allows."
        ))


def _parse(data: bytes, max_pixels: int | None = None) -> Dataset:
    if not is_dicom(data):
        raise NotDicom("The file is not DICOM Part 10 (no 'DICM' marker at byte 128).")
    _check_inflated_size(data, max_pixels)
    try:
        ds = dcmread(io.BytesIO(data))
    except InvalidDicomError:
        raise NotDicom("The file's DICOM file meta information cannot be read.") from None
    except (EOFError, OSError):
        raise TruncatedDicom(TRUNCATED_MESSAGE) from None
    except Exception as error:  # pydicom's parse errors name tags and VRs, never values
        raise UndecodableDicom(
            f"The DICOM file cannot be parsed ({type(error).__name__})."
        ) from None
    if "TransferSyntaxUID" not in ds.file_meta or _is_cut_short(ds, data):
        raise TruncatedDicom(TRUNCATED_MESSAGE)
    return ds


def _is_cut_short(ds: Dataset, data: bytes) -> bool:
    """pydicom reads a cut file without complaint: it keeps a short last value, drops a last
    element whose header is cut, and drops encapsulated pixel data cut inside its fragments."""
    if len(ds) == 0:
        return True
    body = data[DICM_OFFSET:]
    pixel_tag_seen = b"\xe0\x7f\x10\x00" in body or b"\x7f\xe0\x00\x10" in body
    if _PIXEL_DATA not in ds and ("Rows" in ds or pixel_tag_seen):
        return True
    last = ds.get_item(max(ds.keys()))
    length = getattr(last, "length", _UNDEFINED_LENGTH)
    value_tell = getattr(last, "value_tell", None)
    if length == _UNDEFINED_LENGTH or value_tell is None or _is_deflated(ds):
        return False  # a sequence or encapsulated data ends with its delimiter, checked above
    # A defined-length last element must end where the file does.
    return bool(value_tell + length != len(data))


def _is_deflated(ds: Dataset) -> bool:
    # A deflated data set is read from an inflated copy: its offsets are not the file's.
    return bool(ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian)


def _check_image(ds: Dataset) -> None:
    """The checks that need only the header, in the order their answers are most useful."""
    if _PIXEL_DATA not in ds:
        raise NoPixelData(
            "The DICOM file has no pixel data (for example a structured report or an RT plan)."
        )
    modality = _clean_code_string(ds.get("Modality"))
    if modality not in ACCEPTED_MODALITIES:
        raise UnsupportedModality(modality)
    syntax = _clean_uid(ds.file_meta.get("TransferSyntaxUID"))
    try:
        supported = syntax is not None and get_decoder(UID(syntax)).is_available
    except NotImplementedError:
        supported = False
    if not supported:
        raise UnsupportedTransferSyntax(syntax)
    photometric = _clean_code_string(ds.get("PhotometricInterpretation"))
    if photometric not in MONOCHROME or ds.get("SamplesPerPixel", 1) != 1:
        raise UnsupportedPixels(
            f"The DICOM image's photometric interpretation is {photometric}; accepted: "
            f"{', '.join(MONOCHROME)} (greyscale, one sample per pixel)."
        )


def _frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        raise UnsupportedPixels("The DICOM image's Number of Frames is not a number.") from None


def _check_size(ds: Dataset, max_pixels: int | None) -> None:
    try:
        pixels = int(ds.Rows) * int(ds.Columns) * _frame_count(ds)
    except (AttributeError, TypeError, ValueError):
        raise UnsupportedPixels("The DICOM image has no valid Rows and Columns.") from None
    if pixels <= 0:
        raise UnsupportedPixels("The DICOM image has zero rows or columns.")
    if max_pixels is not None and pixels > max_pixels:
        raise TooManyPixels(pixels, max_pixels)


def _stored_frames(ds: Dataset) -> np.ndarray:
    try:
        stored = ds.pixel_array
    except ValueError as error:
        if "less than expected" in str(error):
            raise TruncatedDicom(TRUNCATED_MESSAGE) from None
        raise UndecodableDicom(f"The DICOM pixel data cannot be decoded: {error}") from None
    except Exception as error:  # a codec's error on corrupt or cut compressed data
        raise UndecodableDicom(
            f"The DICOM pixel data cannot be decoded ({type(error).__name__}: {error})."
        ) from None
    return stored if _frame_count(ds) > 1 else stored[np.newaxis]


def frame_attributes(ds: Dataset, index: int) -> Dataset:
    """The Modality LUT and VOI LUT attributes that apply to frame `index`."""
    view = Dataset()
    view.file_meta = ds.file_meta  # LUT data stored as OW needs the byte order
    sources = [ds]
    for groups_keyword, position in (
        ("SharedFunctionalGroupsSequence", 0),
        ("PerFrameFunctionalGroupsSequence", index),
    ):
        groups = ds.get(groups_keyword) or []
        if position < len(groups):
            sources += [groups[position][m][0] for m in _FUNCTIONAL_MACROS
                        if groups[position].get(m)]
    for source in sources:
        for keyword in (*_MODALITY_LUT_KEYWORDS, *_VOI_KEYWORDS):
            if keyword in source:
                view[keyword] = source[keyword]
    return view


def _window_to_8bit(values: np.ndarray, attributes: Dataset) -> np.ndarray | None:
    # Declaring an unsigned 8-bit output with no rescale makes pydicom's windowing map the
    # window onto exactly 0..255 (its output range follows Bits Stored and the rescale).
    window = Dataset()
    window.PhotometricInterpretation = "MONOCHROME2"
    window.BitsStored = 8
    window.PixelRepresentation = 0
    for keyword in ("WindowCenter", "WindowWidth", "VOILUTFunction"):
        if keyword in attributes:
            window[keyword] = attributes[keyword]
    try:
        return np.asarray(apply_windowing(values, window), dtype=np.float64)
    except (ValueError, TypeError, IndexError):  # an invalid window: fall back to the range
        return None


def _voi_to_8bit(values: np.ndarray, attributes: Dataset) -> np.ndarray:
    lut = attributes.get("VOILUTSequence")
    if lut and lut[0].get("LUTDescriptor") and lut[0].get("LUTData") is not None:
        bits = int(lut[0].LUTDescriptor[2])
        output = apply_voi(np.rint(values).astype(np.int64), attributes)
        # Its top 8 bits, as DCMTK takes them: x * 256 / 2**bits, floored below.
        scaled: np.ndarray = np.asarray(output, dtype=np.float64) * (256.0 / (1 << bits))
        return scaled
    if "WindowCenter" in attributes and "WindowWidth" in attributes:
        windowed = _window_to_8bit(values, attributes)
        if windowed is not None:
            return windowed
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.float64)
    stretched: np.ndarray = (values.astype(np.float64) - low) / (high - low) * 255.0
    return stretched


def frame_to_8bit(stored: np.ndarray, attributes: Dataset, monochrome1: bool) -> np.ndarray:
    """One frame of stored values -> the 8-bit greyscale picture a viewer shows."""
    values = np.asarray(apply_modality_lut(stored, attributes))
    display = _voi_to_8bit(values, attributes)
    if monochrome1:
        display = np.subtract(255.0, display)
    # Rounded down; the millionth of a level keeps a value the window maps onto a whole level
    # (computed as 41.99999999999999) from dropping one.
    return np.asarray(np.clip(np.floor(display + FLOOR_TOLERANCE), 0, 255), dtype=np.uint8)


def read_dicom(data: bytes, max_pixels: int | None = None) -> DicomSlices:
    """Check a DICOM Part 10 file and return its identity and 8-bit frames; raise a
    `DicomError` subclass (no HTTP in it) when it cannot be one of the model's inputs."""
    ds = _parse(data, max_pixels)
    _check_image(ds)
    _check_size(ds, max_pixels)
    stored = _stored_frames(ds)
    monochrome1 = _clean_code_string(ds.get("PhotometricInterpretation")) == "MONOCHROME1"
    frames = tuple(
        frame_to_8bit(frame, frame_attributes(ds, index), monochrome1)
        for index, frame in enumerate(stored)
    )
    return DicomSlices(read_identity(ds), frames)


def frame_png(frame: np.ndarray, compress_level: int = 1) -> bytes:
    """A frame as the canonical bytes the model's signature decodes: an 8-bit greyscale PNG.
    The level changes the bytes' size, never the pixels (0: stored, no compression)."""
    buffer = io.BytesIO()
    Image.fromarray(frame, "L").save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()

"""DICOM Part 10 files made with pydicom for the tests: MR slices at 8, 12 and 16 bits, signed
and unsigned, with rescale, windowing or a VOI LUT, MONOCHROME1, big endian, RLE, JPEG-LS,
JPEG 2000 and JPEG baseline compressed, multi-frame; and the files that must be refused: a CT,
an SR without pixels, a truncated file, a file full of patient data (PHI).

`mr_file` builds one file from a 2-D (or, for multi-frame, 3-D) array of stored values; the
`DICOM_MAKERS` table names one file per case, each from `synthetic_slice` so the model sees a
head-like picture. `PHI` lists the patient values the PHI file carries: a privacy test checks
that none of them leaves the service.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
BASIC_TEXT_SR_STORAGE = UID("1.2.840.10008.5.1.4.1.1.88.11")
ENHANCED_MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4.1")
MPEG2_MAIN_PROFILE = UID("1.2.840.10008.1.2.4.100")

# Values no response, log line, metric or error may ever contain.
PHI = {
    "PatientName": "Doe^Johanna^Q",
    "PatientID": "PID-93817265",
    "PatientBirthDate": "19610423",
    "PatientAddress": "17 Marigold Lane, Springfield",
    "OtherPatientIDs": "ALT-55512345",
    "AccessionNumber": "ACC-7712093",
    "ReferringPhysicianName": "Smithers^Waylon",
    "InstitutionName": "Saint Quimby Memorial Hospital",
    "StudyID": "STUDY-44021",
    "StudyDate": "20240117",
    "StudyTime": "101502",
    "StudyDescription": "BRAIN W/WO CONTRAST for Johanna Doe",
    "SeriesDescription": "AX T1 POST Doe",
    "PatientComments": "allergic to gadolinium, see chart PID-93817265",
    "OperatorsName": "Flanders^Ned",
    "DeviceSerialNumber": "SN-00912-PHI",
    "PerformingPhysicianName": "Hibbert^Julius",
    "ImageComments": "Johanna Doe follow-up",
}


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str | None = None


@dataclass(frozen=True)
class VoiLut:
    first_mapped: int
    bits: int
    data: list[int] = field(default_factory=list)


def _file_meta(sop_class: UID, sop_instance: UID, transfer_syntax: UID) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = transfer_syntax
    return meta


def _base_dataset(modality: str, sop_class: UID, phi: bool) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = ""
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    if phi:
        for keyword, value in PHI.items():
            setattr(ds, keyword, value)
        ds.PatientSex = "F"
        ds.OtherPatientNames = "Doe^Jo"
    ds.file_meta = _file_meta(sop_class, ds.SOPInstanceUID, ExplicitVRLittleEndian)
    return ds


def _set_voi(ds: Dataset, window: Window | None, voi_lut: VoiLut | None) -> None:
    if window is not None:
        ds.WindowCenter = window.center
        ds.WindowWidth = window.width
        if window.function is not None:
            ds.VOILUTFunction = window.function
    if voi_lut is not None:
        item = Dataset()
        item.LUTDescriptor = [len(voi_lut.data), voi_lut.first_mapped, voi_lut.bits]
        item.add_new(0x00283006, "US", voi_lut.data)  # LUT Data; US of the two VRs allowed
        ds.VOILUTSequence = Sequence([item])


def mr_file(
    stored: np.ndarray,
    *,
    bits_stored: int = 16,
    photometric: str = "MONOCHROME2",
    rescale: tuple[float, float] | None = None,
    window: Window | None = None,
    voi_lut: VoiLut | None = None,
    transfer_syntax: UID = ExplicitVRLittleEndian,
    modality: str = "MR",
    phi: bool = False,
    study_uid: str | None = None,
) -> bytes:
    """One MR (or other modality) image file holding `stored` as its stored pixel values."""
    sop_class = CT_IMAGE_STORAGE if modality == "CT" else MRImageStorage
    ds = _base_dataset(modality, sop_class, phi)
    if study_uid is not None:
        ds.StudyInstanceUID = study_uid
    ds.set_pixel_data(stored, photometric, bits_stored, generate_instance_uid=False)
    if stored.ndim == 3:
        ds.NumberOfFrames = stored.shape[0]
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    _set_voi(ds, window, voi_lut)
    if transfer_syntax in (RLELossless, JPEGLSLossless, JPEG2000Lossless):
        ds.compress(transfer_syntax, generate_instance_uid=False)
    elif transfer_syntax == JPEGBaseline8Bit:
        _encapsulate_jpeg(ds, stored)
    elif transfer_syntax != ExplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
        if transfer_syntax == ExplicitVRBigEndian:  # pydicom writes OW bytes as they are
            ds.PixelData = stored.astype(stored.dtype.newbyteorder(">")).tobytes()
    return save(ds)


def _encapsulate_jpeg(ds: Dataset, stored: np.ndarray) -> None:
    # pydicom has no JPEG baseline encoder; Pillow's libjpeg makes the codestream.
    frames = stored if stored.ndim == 3 else stored[np.newaxis]
    codestreams = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame.astype(np.uint8), "L").save(buffer, format="JPEG", quality=95)
        codestreams.append(buffer.getvalue())
    ds.PixelData = encapsulate(codestreams)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit


def save(ds: Dataset) -> bytes:
    """The dataset as Part 10 bytes (preamble, `DICM`, file meta, dataset)."""
    syntax = ds.file_meta.TransferSyntaxUID
    buffer = io.BytesIO()
    ds.save_as(
        buffer,
        enforce_file_format=True,
        implicit_vr=syntax == ImplicitVRLittleEndian,
        little_endian=syntax != ExplicitVRBigEndian,
    )
    return buffer.getvalue()


def sr_file() -> bytes:
    """A Basic Text SR: a DICOM object with no pixel data."""
    ds = _base_dataset("SR", BASIC_TEXT_SR_STORAGE, phi=False)
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    return save(ds)


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    """The first part of a file, as from an interrupted copy."""
    return data[: int(len(data) * keep)]


def scaled(grey: np.ndarray, bits: int, signed: bool = False) -> np.ndarray:
    """An 8-bit slice spread over `bits` stored bits, low bits set, shifted down when signed."""
    values = np.asarray(grey, dtype=np.int64) * ((1 << bits) - 1) // 255
    values -= (values % 3) * (values > 2)  # low bits in use, not a plain multiple
    if signed:
        values -= 1 << (bits - 1)
        return np.asarray(values, dtype=np.int16 if bits > 8 else np.int8)
    return np.asarray(values, dtype=np.uint16 if bits > 8 else np.uint8)


def _ramp_lut(bits: int, first_mapped: int, entries: int) -> VoiLut:
    top = (1 << bits) - 1
    return VoiLut(first_mapped, bits, [round(i * top / (entries - 1)) for i in range(entries)])


DICOM_MAKERS: dict[str, Callable[[np.ndarray], bytes]] = {
    "mr_8bit": lambda g: mr_file(scaled(g, 8), bits_stored=8),
    "mr_12bit": lambda g: mr_file(scaled(g, 12), bits_stored=12),
    "mr_16bit": lambda g: mr_file(scaled(g, 16), bits_stored=16),
    "mr_16bit_signed": lambda g: mr_file(scaled(g, 16, signed=True), bits_stored=16),
    "mr_12bit_signed_rescale_window": lambda g: mr_file(
        scaled(g, 12, signed=True), bits_stored=12, rescale=(2.0, 1000.0),
        window=Window(1200.0, 3000.0),
    ),
    "mr_window_sigmoid": lambda g: mr_file(
        scaled(g, 12), bits_stored=12, window=Window(1800.0, 2400.0, "SIGMOID")
    ),
    "mr_voi_lut": lambda g: mr_file(
        scaled(g, 12), bits_stored=12, voi_lut=_ramp_lut(12, 500, 3000)
    ),
    "mr_monochrome1": lambda g: mr_file(
        (4095 - scaled(g, 12)).astype(np.uint16), bits_stored=12, photometric="MONOCHROME1"
    ),
    "mr_big_endian": lambda g: mr_file(
        scaled(g, 12), bits_stored=12, transfer_syntax=ExplicitVRBigEndian
    ),
    "mr_implicit_vr": lambda g: mr_file(
        scaled(g, 16), bits_stored=16, transfer_syntax=ImplicitVRLittleEndian
    ),
    "mr_rle": lambda g: mr_file(scaled(g, 16), bits_stored=16, transfer_syntax=RLELossless),
    "mr_jpegls": lambda g: mr_file(scaled(g, 12), bits_stored=12, transfer_syntax=JPEGLSLossless),
    "mr_jpeg2000": lambda g: mr_file(
        scaled(g, 16), bits_stored=16, transfer_syntax=JPEG2000Lossless
    ),
    "mr_jpeg_baseline": lambda g: mr_file(g, bits_stored=8, transfer_syntax=JPEGBaseline8Bit),
}


def multiframe_file(
    slices: list[np.ndarray], enhanced_windows: list[Window] | None = None
) -> bytes:
    """A multi-frame MR: one stored frame per slice (12-bit). With `enhanced_windows`, each
    frame carries its own window in per-frame functional groups and a shared rescale."""
    stored = np.stack([scaled(grey, 12) for grey in slices])
    if enhanced_windows is None:
        return mr_file(stored, bits_stored=12)
    ds = _base_dataset("MR", ENHANCED_MR_IMAGE_STORAGE, phi=False)
    ds.set_pixel_data(stored, "MONOCHROME2", 12, generate_instance_uid=False)
    ds.NumberOfFrames = len(slices)
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 1.0, -100.0, "US"
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for window in enhanced_windows:
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = window.center, window.width
        group = Dataset()
        group.FrameVOILUTSequence = Sequence([voi])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    return save(ds)


def rgb_file(grey: np.ndarray) -> bytes:
    """An MR file with colour pixels (RGB), which the rule does not turn into greyscale."""
    ds = _base_dataset("MR", MRImageStorage, phi=False)
    ds.set_pixel_data(np.stack([grey] * 3, axis=-1), "RGB", 8, generate_instance_uid=False)
    return save(ds)


def unsupported_syntax_file(grey: np.ndarray, syntax: UID = MPEG2_MAIN_PROFILE) -> bytes:
    """An MR file claiming a transfer syntax no installed plugin decodes (MPEG-2 video)."""
    ds = _base_dataset("MR", MRImageStorage, phi=False)
    ds.set_pixel_data(grey, "MONOCHROME2", 8, generate_instance_uid=False)
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(64)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax
    return save(ds)


def phi_file(grey: np.ndarray) -> bytes:
    """A 16-bit MR file whose header carries every value in `PHI`."""
    return mr_file(scaled(grey, 16), bits_stored=16, window=Window(30000.0, 60000.0), phi=True)

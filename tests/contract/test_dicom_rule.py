"""The DICOM pixel rule (model_contract/dicom.py): values pinned against the DICOM standard's
formulas worked out by hand, every check's error, and the identity as the only header data out."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from dicom_files import (
    DICOM_MAKERS,
    PHI,
    VoiLut,
    Window,
    mr_file,
    multiframe_file,
    phi_file,
    rgb_file,
    scaled,
    sr_file,
    truncated,
    unsupported_syntax_file,
)
from PIL import Image
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from synthetic_slices import synthetic_slice

from model_contract.dicom import (
    NoPixelData,
    NotDicom,
    TooManyPixels,
    TruncatedDicom,
    UnsupportedModality,
    UnsupportedPixels,
    UnsupportedTransferSyntax,
    frame_png,
    is_dicom,
    read_dicom,
)

GREY = synthetic_slice(7)


def only_frame(data: bytes) -> np.ndarray:
    slices = read_dicom(data)
    assert len(slices.frames) == 1
    frame = slices.frames[0]
    assert frame.dtype == np.uint8 and frame.shape == GREY.shape
    return frame


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 ('LINEAR') onto 0..255, written out from the standard, rounded down
    (as DCMTK does)."""
    values = values.astype(np.float64)
    out = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
    out[values <= center - 0.5 - (width - 1) / 2] = 0
    out[values > center - 0.5 + (width - 1) / 2] = 255
    return np.floor(out).astype(np.uint8)


def stretch(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    low, high = values.min(), values.max()
    return np.floor((values - low) / (high - low) * 255.0).astype(np.uint8)


@pytest.mark.parametrize(
    "syntax",
    [
        ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian, RLELossless, JPEGBaseline8Bit, JPEGExtended12Bit,
        JPEGLossless, JPEGLosslessSV1, JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless,
        JPEG2000, HTJ2KLossless,
    ],
)
def test_a_decoder_is_installed_for_every_common_transfer_syntax(syntax: str) -> None:
    assert get_decoder(syntax).is_available, syntax


@pytest.mark.parametrize("name", sorted(DICOM_MAKERS))
def test_every_sample_file_reads_as_one_8bit_frame_with_its_identity(name: str) -> None:
    data = DICOM_MAKERS[name](GREY)
    assert is_dicom(data)
    slices = read_dicom(data)
    assert slices.identity.modality == "MR"
    assert slices.identity.sop_instance_uid and slices.identity.study_instance_uid
    assert len(slices.frames) == 1 and slices.frames[0].dtype == np.uint8


@pytest.mark.parametrize(
    ("name", "bits", "signed"),
    [
        ("mr_8bit", 8, False), ("mr_12bit", 12, False), ("mr_16bit", 16, False),
        ("mr_16bit_signed", 16, True), ("mr_big_endian", 12, False),
        ("mr_implicit_vr", 16, False), ("mr_rle", 16, False), ("mr_jpegls", 12, False),
        ("mr_jpeg2000", 16, False),
    ],
)
def test_without_a_window_the_frame_range_is_stretched_to_8_bits(
    name: str, bits: int, signed: bool
) -> None:
    # Lossless syntaxes give back the stored values exactly, so the result is pinned.
    expected = stretch(scaled(GREY, bits, signed))
    assert np.array_equal(only_frame(DICOM_MAKERS[name](GREY)), expected)


def test_monochrome1_is_inverted_so_it_looks_like_its_monochrome2_twin() -> None:
    expected = stretch(scaled(GREY, 12))
    assert np.array_equal(only_frame(DICOM_MAKERS["mr_monochrome1"](GREY)), expected)


def test_rescale_then_window_on_signed_data_follows_the_standard() -> None:
    stored = scaled(GREY, 12, signed=True)
    frame = only_frame(DICOM_MAKERS["mr_12bit_signed_rescale_window"](GREY))
    assert np.array_equal(frame, linear_window(stored * 2.0 + 1000.0, 1200.0, 3000.0))


def test_window_values_pinned_by_hand() -> None:
    # Slope 2, intercept 1000, window 1200/3000: -3096 and 4294 clip, 800 -> 93.53, 1000 ->
    # 110.54, 1200 -> 127.54 (PS3.3 C.11.2.1.2.1 worked out on paper), rounded down.
    stored = np.zeros(GREY.shape, dtype=np.int16)
    stored[0, :5] = [-2048, -100, 0, 100, 1647]
    frame = only_frame(
        mr_file(stored, bits_stored=12, rescale=(2.0, 1000.0), window=Window(1200.0, 3000.0))
    )
    assert frame[0, :5].tolist() == [0, 93, 110, 127, 255]


def test_sigmoid_window() -> None:
    stored = scaled(GREY, 12).astype(np.float64)
    expected = np.floor(255 / (1 + np.exp(-4 * (stored - 1800.0) / 2400.0)))
    assert np.array_equal(only_frame(DICOM_MAKERS["mr_window_sigmoid"](GREY)), expected)


def test_voi_lut_sequence_wins_over_the_window_and_keeps_its_top_8_bits() -> None:
    stored = scaled(GREY, 12)
    lut = [(i * 7) % 4096 for i in range(1000)]  # not monotonic: the table really is used
    data = mr_file(
        stored, bits_stored=12, window=Window(2000.0, 10.0), voi_lut=VoiLut(100, 12, lut)
    )
    expected = np.asarray(lut)[np.clip(stored.astype(np.int64) - 100, 0, 999)] >> 4
    assert np.array_equal(only_frame(data), expected.astype(np.uint8))


def test_an_invalid_window_falls_back_to_the_frame_range() -> None:
    stored = scaled(GREY, 12)
    data = mr_file(stored, bits_stored=12, window=Window(1000.0, 0.0))
    assert np.array_equal(only_frame(data), stretch(stored))


def test_a_constant_frame_is_black() -> None:
    data = mr_file(np.full(GREY.shape, 700, dtype=np.uint16), bits_stored=12)
    assert not only_frame(data).any()


def test_jpeg_baseline_decodes_close_to_the_slice() -> None:
    frame = only_frame(DICOM_MAKERS["mr_jpeg_baseline"](GREY))
    assert np.abs(frame.astype(int) - stretch(GREY).astype(int)).mean() < 3


def test_multi_frame_gives_one_frame_each_with_its_own_range() -> None:
    slices = [synthetic_slice(seed) for seed in (1, 2, 3)]
    frames = read_dicom(multiframe_file(slices)).frames
    assert len(frames) == 3
    for frame, grey in zip(frames, slices, strict=True):
        assert np.array_equal(frame, stretch(scaled(grey, 12)))


def test_enhanced_multi_frame_uses_shared_rescale_and_per_frame_windows() -> None:
    slices = [synthetic_slice(seed) for seed in (1, 2)]
    windows = [Window(1000.0, 2000.0), Window(2500.0, 800.0)]
    frames = read_dicom(multiframe_file(slices, windows)).frames
    for frame, grey, window in zip(frames, slices, windows, strict=True):
        values = scaled(grey, 12).astype(np.float64) - 100.0
        assert np.array_equal(frame, linear_window(values, window.center, window.width))


def test_frame_png_is_lossless_8bit_greyscale() -> None:
    frame = only_frame(DICOM_MAKERS["mr_16bit"](GREY))
    with Image.open(io.BytesIO(frame_png(frame))) as image:
        assert (image.format, image.mode) == ("PNG", "L")
        assert np.array_equal(np.asarray(image), frame)


def test_not_dicom() -> None:
    png = io.BytesIO()
    Image.fromarray(GREY, "L").save(png, format="PNG")
    assert not is_dicom(png.getvalue())
    with pytest.raises(NotDicom, match="DICM"):
        read_dicom(png.getvalue())


def test_a_ct_is_refused_naming_its_modality() -> None:
    with pytest.raises(UnsupportedModality, match="CT") as caught:
        read_dicom(mr_file(scaled(GREY, 12), bits_stored=12, modality="CT"))
    assert caught.value.modality == "CT" and caught.value.reason == "unsupported_modality"


def test_an_sr_has_no_pixel_data() -> None:
    with pytest.raises(NoPixelData):
        read_dicom(sr_file())


@pytest.mark.parametrize("name", ["mr_16bit", "mr_big_endian", "mr_rle", "mr_jpeg2000"])
@pytest.mark.parametrize("keep", [0.05, 0.5, 0.97])
def test_a_truncated_file_is_reported_as_truncated(name: str, keep: float) -> None:
    with pytest.raises(TruncatedDicom):
        read_dicom(truncated(DICOM_MAKERS[name](GREY), keep))


def test_an_unsupported_transfer_syntax_is_named() -> None:
    with pytest.raises(UnsupportedTransferSyntax, match=r"MPEG2 .*1\.2\.840\.10008\.1\.2\.4\.100"):
        read_dicom(unsupported_syntax_file(GREY))


def test_colour_pixels_are_refused() -> None:
    with pytest.raises(UnsupportedPixels, match="RGB"):
        read_dicom(rgb_file(GREY))


def test_the_pixel_limit_counts_every_frame() -> None:
    slices = [synthetic_slice(seed) for seed in (1, 2, 3)]
    limit = GREY.size * 3 - 1
    with pytest.raises(TooManyPixels):
        read_dicom(multiframe_file(slices), max_pixels=limit)
    assert len(read_dicom(multiframe_file(slices), max_pixels=limit + 1).frames) == 3


def test_only_uids_and_modality_leave_the_rule(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    data = phi_file(GREY)
    slices = read_dicom(data)
    ct = phi_file(GREY).replace(b"MR", b"CT", 1)
    with pytest.raises(UnsupportedModality) as caught:
        read_dicom(ct)
    said = " ".join([repr(slices), str(caught.value), caplog.text])
    for value in PHI.values():
        assert value.split("^")[0] not in said
    assert set(slices.identity.as_dict()) == {
        "sop_instance_uid", "series_instance_uid", "study_instance_uid", "modality"
    }


def test_a_value_smuggled_into_a_uid_or_the_modality_is_not_passed_on() -> None:
    data = DICOM_MAKERS["mr_8bit"](GREY)
    from pydicom import dcmread

    ds = dcmread(io.BytesIO(data))
    ds.SeriesInstanceUID = "Doe^Johanna"
    ds.Modality = "Doe Johanna MR"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(UnsupportedModality) as caught:
        read_dicom(buffer.getvalue())
    assert "Doe" not in str(caught.value)


def deflated(data: bytes) -> bytes:
    from pydicom import dcmread
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_deflated_file_reads_like_its_uncompressed_twin() -> None:
    data = DICOM_MAKERS["mr_16bit"](GREY)
    assert np.array_equal(only_frame(deflated(data)), only_frame(data))


def test_a_deflate_bomb_is_refused_before_it_is_inflated() -> None:
    # 64 MB of zeros deflate to about 64 KB: the limit is checked on the stream, not after.
    bomb = deflated(mr_file(np.zeros((4096, 8192), dtype=np.uint16), bits_stored=16))
    assert len(bomb) < 200_000
    with pytest.raises(TooManyPixels, match="inflates"):
        read_dicom(bomb, max_pixels=1_000_000)


def test_a_window_onto_whole_levels_gives_those_levels_exactly() -> None:
    """Scanner-like 16-bit data (low byte in use) shown at slope 1/256, window 128/256 is the
    8-bit slice itself: float error must not drop a level where the low byte is 0."""
    low = np.random.default_rng(0).integers(0, 256, GREY.shape)
    low[::2] = 0
    stored = (GREY.astype(np.int64) * 256 + low).astype(np.uint16)
    data = mr_file(stored, bits_stored=16, rescale=(1 / 256, 0.0), window=Window(128.0, 256.0))
    assert np.array_equal(only_frame(data), GREY)

"""Data discovery: class folders, every format and mode of the real data, unreadable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from synthetic_images import encode, make_slice

from training.discovery import DataError, resolve_classes, scan_images
from training.preprocessing import PreprocessConfig, make_preprocess_fn

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _variants(image: Image.Image) -> dict[str, bytes]:
    """One file per format and mode found in the development set."""
    rgba = image.convert("RGBA")
    rgba.putalpha(200)
    return {
        "jpeg_l.jpg": encode(image, "JPEG", quality=90),
        "jpeg_rgb.JPG": encode(image.convert("RGB"), "JPEG", quality=90),
        "png_l.png": encode(image, "PNG"),
        "png_rgb.png": encode(image.convert("RGB"), "PNG"),
        "png_rgba.png": encode(rgba, "PNG"),
        "png_p.png": encode(image.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE),
                            "PNG"),
        "tiff_rgb.tif": encode(image.convert("RGB"), "TIFF"),
        "png_named_jpg.jpg": encode(image, "PNG"),
        "jpeg_named.jpeg": encode(image, "JPEG"),
    }


def _write(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def test_every_format_and_mode_loads_and_decodes_in_the_graph(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write(data / "yes", _variants(make_slice(1, 64, tumor=True)))
    _write(data / "no", _variants(make_slice(2, 64)))
    layout = resolve_classes(data, min_images_per_class=5)
    scan = scan_images(layout)

    assert scan.unreadable == []
    assert scan.counts() == {"no": 9, "yes": 9}
    by_name = {Path(r.path).name: r for r in scan.records if r.class_name == "yes"}
    assert {r.label for r in scan.records if r.class_name == "yes"} == {1}
    assert {r.label for r in scan.records if r.class_name == "no"} == {0}
    assert (by_name["tiff_rgb.tif"].metadata.format, by_name["tiff_rgb.tif"].metadata.mode) == (
        "TIFF", "RGB")
    assert by_name["tiff_rgb.tif"].data.startswith(PNG_SIGNATURE)  # converted for the graph
    assert by_name["png_named_jpg.jpg"].metadata.format == "PNG"  # sniffed, not named
    assert by_name["png_p.png"].metadata.mode == "P"
    assert by_name["png_rgba.png"].metadata.mode == "RGBA"

    preprocess = make_preprocess_fn(PreprocessConfig(image_size=32, channels=1,
                                                     crop_to_brain=True))
    pixels = preprocess(tf.constant([r.data for r in scan.records])).numpy()
    assert pixels.shape == (18, 32, 32, 1)
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0
    # Every variant of one slice decodes to (nearly) the same picture.
    reference = pixels[0]
    for index, record in enumerate(scan.records):
        if record.class_name == scan.records[0].class_name:
            assert float(np.abs(pixels[index] - reference).mean()) < 0.05, record.path


def test_corrupt_and_truncated_files_are_reported_not_fatal(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for name, seed in (("tumor", 0), ("normal", 100)):
        _write(data / name, {f"{i}.png": encode(make_slice(seed + i, 48), "PNG")
                             for i in range(3)})
    good_jpeg = encode(make_slice(7, 64), "JPEG")
    (data / "tumor" / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (data / "normal" / "notes.jpg").write_bytes(b"this is not an image")

    scan = scan_images(resolve_classes(data, min_images_per_class=1))

    assert scan.counts() == {"normal": 3, "tumor": 3}
    reasons = {u.path: u.reason for u in scan.unreadable}
    assert set(reasons) == {"tumor/truncated.jpg", "normal/notes.jpg"}
    assert "not a recognised image format" in reasons["normal/notes.jpg"]
    assert "truncated" in reasons["tumor/truncated.jpg"]


def test_scan_fails_when_too_few_readable_images_remain(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write(data / "tumor", {f"{i}.png": encode(make_slice(i, 32), "PNG") for i in range(3)})
    _write(data / "healthy", {f"{i}.jpg": b"garbage" for i in range(3)})
    layout = resolve_classes(data, min_images_per_class=3)
    with pytest.raises(DataError, match="has 0 readable image"):
        scan_images(layout, min_images_per_class=3)


@pytest.mark.parametrize(
    ("folders", "positive"),
    [
        (("Brain Tumor", "Healthy"), "Brain Tumor"),
        (("yes", "no"), "yes"),
        (("tumor", "normal"), "tumor"),
        (("glioma_tumour", "notumor"), "glioma_tumour"),  # positive inferred from the negative
        (("Unhealthy", "No Tumor"), "Unhealthy"),
        (("positive", "negative"), "positive"),
    ],
)
def test_default_class_names_decide_the_positive_class(
    tmp_path: Path, folders: tuple[str, str], positive: str
) -> None:
    for folder in folders:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.png").write_bytes(b"x")
    layout = resolve_classes(tmp_path, min_images_per_class=1)
    assert layout.positive == positive
    assert layout.classes == [next(f for f in folders if f != positive), positive]


def test_positive_class_option_overrides_names_case_insensitively(tmp_path: Path) -> None:
    for folder in ("cats", "dogs"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.png").write_bytes(b"x")
    with pytest.raises(DataError, match="cannot tell which"):
        resolve_classes(tmp_path, min_images_per_class=1)
    assert resolve_classes(tmp_path, "DOGS", min_images_per_class=1).positive == "dogs"

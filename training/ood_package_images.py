"""Out-of-distribution images taken from what installed packages ship, rendered at run time.

scikit-image's sample images (photos, textures, microscopy), pydicom's test files (CT,
ultrasound, nuclear medicine and non-brain MR, windowed to 8 bits) and matplotlib's sample
data. Nothing is downloaded and nothing derived from them is committed: `ood_set.py` writes
them into a folder the caller chooses.
"""

from __future__ import annotations

import gzip
import importlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class OodImage:
    kind: str  # the sub-folder, one of ood_set.KINDS
    name: str  # file stem, unique within the kind
    image: Image.Image
    source: str  # where it came from, for the set's manifest


# (function name in skimage.data, kind) for the images scikit-image ships in its wheel.
SKIMAGE_IMAGES: tuple[tuple[str, str], ...] = (
    ("astronaut", "natural_photos"),
    ("camera", "natural_photos"),
    ("chelsea", "natural_photos"),
    ("coffee", "natural_photos"),
    ("coins", "natural_photos"),
    ("clock", "natural_photos"),
    ("horse", "natural_photos"),
    ("moon", "natural_photos"),
    ("rocket", "natural_photos"),
    ("hubble_deep_field", "natural_photos"),
    ("page", "documents_screenshots"),
    ("text", "documents_screenshots"),
    ("logo", "documents_screenshots"),
    ("brick", "textures_patterns"),
    ("grass", "textures_patterns"),
    ("gravel", "textures_patterns"),
    ("checkerboard", "textures_patterns"),
    ("colorwheel", "textures_patterns"),
    ("cell", "microscopy"),
    ("immunohistochemistry", "microscopy"),
    ("microaneurysms", "other_modalities"),
    ("retina", "other_modalities"),
    ("shepp_logan_phantom", "head_ct"),
)

# pydicom test files with pixel data pydicom decodes without optional plugins:
# (file stem, kind, windows as (centre, width) in stored units; empty: stretch percentiles).
HEAD_CT_WINDOWS = ((40.0, 80.0), (50.0, 130.0), (40.0, 400.0), (500.0, 2000.0))
DICOM_FILES: tuple[tuple[str, str, tuple[tuple[float, float], ...]], ...] = (
    ("693_J2KI", "head_ct", HEAD_CT_WINDOWS),
    ("J2K_pixelrep_mismatch", "head_ct", HEAD_CT_WINDOWS),
    ("CT_small", "other_modalities", ((40.0, 400.0), (-600.0, 1500.0), (500.0, 2000.0))),
    ("JPEG2000", "other_modalities", ()),
    ("examples_jpeg2k", "other_modalities", ()),
    ("examples_palette", "other_modalities", ()),
    ("examples_rgb_color", "other_modalities", ()),
    ("examples_ybr_color", "other_modalities", ()),
    ("ExplVR_BigEnd", "other_modalities", ()),
    ("MR_small", "non_brain_mr", ()),
    ("examples_overlay", "non_brain_mr", ()),
    ("GDCMJ2K_TextGBR", "documents_screenshots", ()),
    ("image_dfl", "textures_patterns", ()),
)
# How many frames of a multi-frame file (the ultrasound cine loop) to keep, evenly spaced.
MAX_FRAMES = 6


def to_uint8(values: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Map values onto 0..255: between low and high, or the 0.5 and 99.5 percentiles."""
    values = np.asarray(values, dtype=np.float64)
    if low is None or high is None:
        low, high = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    scaled = (values - low) / max(high - low, 1e-9)
    return np.asarray(np.clip(np.rint(scaled * 255.0), 0, 255), dtype=np.uint8)


def _skimage_data() -> Any:
    return importlib.import_module("skimage.data")  # untyped: keep mypy from following it


def _skimage_images() -> Iterator[OodImage]:
    samples = _skimage_data()
    for name, kind in SKIMAGE_IMAGES:
        pixels = np.asarray(getattr(samples, name)())
        if pixels.dtype != np.uint8:
            pixels = to_uint8(pixels, float(pixels.min()), float(pixels.max()))
        yield OodImage(kind, f"skimage-{name}", Image.fromarray(pixels), f"skimage.data.{name}")
    faces = np.asarray(samples.lfw_subset())  # 200 faces, 25x25 floats in [0, 1]
    for index in range(0, len(faces), 20):
        face = Image.fromarray(to_uint8(faces[index], 0.0, 1.0)).resize((100, 100))
        yield OodImage("natural_photos", f"skimage-lfw-{index:03d}", face,
                       "skimage.data.lfw_subset")


def _dicom_frames(pixels: np.ndarray, photometric: str) -> list[np.ndarray]:
    colour = photometric not in ("MONOCHROME1", "MONOCHROME2")
    frames = pixels if pixels.ndim == (4 if colour else 3) else pixels[np.newaxis]
    step = max(1, len(frames) // MAX_FRAMES)
    return list(frames[::step][:MAX_FRAMES])


def _render_dicom(path: Path, windows: tuple[tuple[float, float], ...]) -> list[np.ndarray]:
    import pydicom
    from pydicom.pixels.processing import apply_color_lut, apply_modality_lut

    dataset = pydicom.dcmread(path)
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    pixels = dataset.pixel_array
    if photometric == "PALETTE COLOR":
        pixels, photometric = apply_color_lut(pixels, dataset), "RGB"
    elif photometric.startswith("MONOCHROME"):
        pixels = apply_modality_lut(pixels, dataset)
    rendered = []
    for frame in _dicom_frames(pixels, photometric):
        if not windows:
            rendered.append(to_uint8(frame))
        for centre, width in windows:
            rendered.append(to_uint8(frame, centre - width / 2, centre + width / 2))
    return rendered


def _pydicom_images() -> Iterator[OodImage]:
    import pydicom.data

    folder = Path(pydicom.data.__file__).parent / "test_files"
    for stem, kind, windows in DICOM_FILES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frames = _render_dicom(folder / f"{stem}.dcm", windows)
        for index, frame in enumerate(frames):
            yield OodImage(kind, f"pydicom-{stem}-{index}", Image.fromarray(frame),
                           f"pydicom test file {stem}.dcm")


def _matplotlib_sample(name: str) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / name


def _matplotlib_images() -> Iterator[OodImage]:
    with Image.open(_matplotlib_sample("grace_hopper.jpg")) as photo:
        yield OodImage("natural_photos", "matplotlib-grace_hopper", photo.convert("RGB"),
                       "matplotlib sample data grace_hopper.jpg")
    for name in ("logo2.png", "Minduka_Present_Blue_Pack.png"):
        with Image.open(_matplotlib_sample(name)) as image:
            yield OodImage("documents_screenshots", f"matplotlib-{Path(name).stem}",
                           image.convert("RGBA"), f"matplotlib sample data {name}")


def brain_mr_control() -> OodImage:
    """matplotlib's sagittal head MRI (s1045.ima, 256x256 16-bit): a brain MRI slice from
    another source, kept apart as an in-distribution control the gate should accept."""
    with gzip.open(_matplotlib_sample("s1045.ima.gz")) as stream:
        raw = stream.read()
    pixels = np.frombuffer(raw, np.uint16).reshape(256, 256)
    return OodImage("brain_mr_control", "matplotlib-s1045", Image.fromarray(to_uint8(pixels)),
                    "matplotlib sample data s1045.ima.gz")


def package_images() -> Iterator[OodImage]:
    yield from _skimage_images()
    yield from _pydicom_images()
    yield from _matplotlib_images()

"""service/images.py: what it sends the model equals training's canonical bytes byte for byte,
uploads are checked in the right order, and service/ never imports training/."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_contract import canonical_bytes as contract_canonical
from service.errors import (
    EmptyFile,
    InvalidInput,
    TooManyPixels,
    Undecodable,
    UnsupportedFormat,
)
from service.images import ADVERTISED_FORMATS, prepare_image
from service.problems import to_problem
from training.images import canonical_bytes as training_canonical

REPO = Path(__file__).resolve().parents[2]


def save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def grey(seed: int = 1) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (40, 56), dtype=np.uint8), "L")


def with_orientation(image: Image.Image, fmt: str, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(image, fmt, exif=exif.tobytes())


def palette_with_transparency() -> bytes:
    image = grey().convert("P")
    return save(image, "PNG", transparency=0)


EXTRA_CASES: dict[str, Callable[[], bytes]] = {
    "png_LA": lambda: save(grey().convert("LA"), "PNG"),
    "png_P_transparent": palette_with_transparency,
    "png_exif_rotated": lambda: with_orientation(grey().convert("RGB"), "PNG", 3),
    "jpeg_exif_orientation_1": lambda: with_orientation(grey().convert("RGB"), "JPEG", 1),
    "jpeg_exif_mirrored": lambda: with_orientation(grey(), "JPEG", 2),
    "tiff_RGB": lambda: save(grey().convert("RGB"), "TIFF"),
    "tiff_RGBA": lambda: save(grey().convert("RGBA"), "TIFF"),
    "tiff_1": lambda: save(grey().convert("1"), "TIFF"),
    "tiff_I32": lambda: save(grey().convert("I"), "TIFF"),
    "tiff_F": lambda: save(grey().convert("F"), "TIFF"),
    "tiff_P": lambda: save(grey().convert("P"), "TIFF"),
    "tiff_LAB": lambda: save(grey().convert("RGB").convert("LAB"), "TIFF"),
    "tiff_deflate": lambda: save(grey(), "TIFF", compression="tiff_adobe_deflate"),
    "gif_transparent": lambda: save(grey().convert("P"), "GIF", transparency=3),
    "webp_RGBA": lambda: save(grey().convert("RGBA"), "WEBP", lossless=True),
    "webp_lossy": lambda: save(grey().convert("RGB"), "WEBP", quality=80),
    "bmp_P": lambda: save(grey().convert("P"), "BMP"),
    "bmp_1": lambda: save(grey().convert("1"), "BMP"),
}


@pytest.fixture(scope="module")
def all_cases(sample_images: dict[str, bytes]) -> dict[str, bytes]:
    return {**sample_images, **{name: make() for name, make in EXTRA_CASES.items()}}


def test_canonical_bytes_equal_training_on_every_mode_and_format(
    all_cases: dict[str, bytes],
) -> None:
    converted = []
    for name, data in all_cases.items():
        expected = training_canonical(data)
        assert contract_canonical(data) == expected, name
        prepared = prepare_image(data, max_pixels=10**7)
        assert prepared.canonical == expected, name
        if prepared.converted:
            converted.append(name)
            assert expected.startswith(b"\x89PNG")
        else:
            assert expected == data
    # The rule really converts what TensorFlow cannot decode, and passes the rest through.
    assert {"png_I16", "tiff_L", "jpeg_CMYK", "jpeg_exif_rotated", "gif_P", "webp_RGB",
            "png_exif_rotated"} <= set(converted)
    assert not {"png_L", "png_RGB", "png_P", "jpeg_L", "jpeg_RGB",
                "jpeg_exif_orientation_1"} & set(converted)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("L", (60, 20), 0)
    image.paste(255, (0, 0, 10, 20))  # a bright band on the left
    rotated = with_orientation(image.convert("RGB"), "JPEG", 6)
    upright = Image.open(io.BytesIO(prepare_image(rotated, 10**6).canonical))
    assert upright.size == (20, 60)  # orientation 6: displayed rotated 90 degrees


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    values = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    canonical = prepare_image(save(Image.fromarray(values), "PNG"), 100).canonical
    assert np.asarray(Image.open(io.BytesIO(canonical))).tolist() == [[0, 1, 255, 128]]


def status_and_reason(error: InvalidInput) -> tuple[int, str]:
    problem = to_problem(error, retry_after_seconds=1)
    return problem.status, problem.reason


def test_checks_come_in_order() -> None:
    with pytest.raises(EmptyFile) as empty:
        prepare_image(b"", 100)
    assert status_and_reason(empty.value) == (422, "empty_file")
    with pytest.raises(UnsupportedFormat) as text:
        prepare_image(b"hello", 100)
    assert status_and_reason(text.value) == (415, "unsupported_format")
    assert text.value.fields["accepted_formats"] == list(ADVERTISED_FORMATS)
    big = save(grey(), "PNG")  # 56x40 of noise: the pixel data spans bytes ~60 to ~2300
    with pytest.raises(TooManyPixels) as pixels:
        prepare_image(big[:200], 100)  # truncated, but the header alone is over the limit
    assert status_and_reason(pixels.value) == (413, "too_many_pixels")
    with pytest.raises(Undecodable) as truncated:
        prepare_image(big[:200], 10_000)
    assert status_and_reason(truncated.value) == (422, "undecodable")


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "TGA", "PCX", "EPS", "PDF"])
def test_formats_outside_the_list_are_refused(fmt: str) -> None:
    image = Image.new("RGB", (16, 16), (9, 9, 9))
    try:
        data = save(image, fmt)
    except (OSError, KeyError):  # a writer this Pillow lacks: use its magic bytes
        data = {"EPS": b"%!PS-Adobe-3.0 EPSF-3.0\n", "PDF": b"%PDF-1.4\n"}[fmt]
    with pytest.raises(UnsupportedFormat):
        prepare_image(data, 10**6)


def test_service_never_imports_training() -> None:
    for path in (REPO / "service").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "training" or n.startswith("training.") for n in names), path
    code = (
        "import sys, service.app, service.__main__, service.openapi;"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'training']"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)

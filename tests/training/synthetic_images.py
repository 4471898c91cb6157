"""Synthetic brain-slice-like images for the training tests (no test reads ../shared).

Imported by name (pytest puts this folder on sys.path), not a conftest, so it cannot clash
with tests/conftest.py."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def make_slice(seed: int, size: int = 128, tumor: bool = False) -> Image.Image:
    """A greyscale "slice": a textured ellipse on black, with random dark and bright blobs.

    Every seed gives a clearly different image (blob layout and ellipse shape vary), so
    distinct seeds are not near-duplicates; `tumor` adds one large bright blob.
    """
    rng = np.random.default_rng(seed)
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    margin_x, margin_y = rng.uniform(0.05, 0.2, size=2) * size
    draw.ellipse((margin_x, margin_y, size - margin_x, size - margin_y),
                 fill=int(rng.integers(70, 130)))
    for _ in range(int(rng.integers(6, 12))):
        cx, cy = rng.uniform(0.2, 0.8, size=2) * size
        radius = rng.uniform(0.04, 0.14) * size
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius),
                     fill=int(rng.integers(20, 200)))
    if tumor:
        cx, cy = rng.uniform(0.35, 0.65, size=2) * size
        radius = rng.uniform(0.12, 0.18) * size
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=250)
    return image.filter(ImageFilter.GaussianBlur(size / 96))


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_dataset(root: Path, per_class: int, size: int = 48,
                  classes: tuple[str, str] = ("Brain Tumor", "Healthy")) -> Path:
    """`root/<class>/<n>.png|jpg` with a mix of formats and modes, distinct images."""
    for class_index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for n in range(per_class):
            image = make_slice(10_000 * (class_index + 1) + n, size, tumor=class_index == 0)
            if n % 3 == 0:
                (folder / f"{n}.jpg").write_bytes(encode(image.convert("RGB"), "JPEG",
                                                         quality=95))
            elif n % 3 == 1:
                (folder / f"{n}.png").write_bytes(encode(image, "PNG"))
            else:
                (folder / f"{n}.jpg").write_bytes(encode(image, "JPEG", quality=90))
    return root

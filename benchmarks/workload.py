"""The benchmark's inputs: real image files from a folder, or synthetic slices made on the fly,
each turned into the canonical bytes of docs/model-contract.md."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.images import UnreadableImage, canonical_bytes

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp"})


@dataclass(frozen=True)
class Workload:
    """Canonical image bytes, the same for the raw model and for every server."""

    images: list[bytes]
    source: str
    converted: int

    @property
    def mean_bytes(self) -> float:
        return float(np.mean([len(image) for image in self.images]))


def find_image_files(folder: Path) -> list[Path]:
    """Every file under `folder` (recursively) with an image suffix, in a stable order."""
    return sorted(
        path for path in folder.rglob("*")
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )


def spread_sample(paths: list[Path], count: int) -> list[Path]:
    """`count` paths spread evenly over the sorted list, so every sub-folder is represented."""
    if count >= len(paths):
        return list(paths)
    return [paths[index * len(paths) // count] for index in range(count)]


def load_folder(folder: Path, max_images: int) -> Workload:
    paths = find_image_files(folder)
    if not paths:
        raise SystemExit(f"no image files under {folder}")
    images: list[bytes] = []
    converted = 0
    for path in spread_sample(paths, max_images):
        data = path.read_bytes()
        try:
            canonical = canonical_bytes(data)
        except UnreadableImage:
            continue  # a corrupt file is no speed measurement; the service tests cover it
        converted += canonical is not data
        images.append(canonical)
    if not images:
        raise SystemExit(f"no readable image under {folder}")
    source = f"{len(images)} of {len(paths)} image files under {folder}"
    return Workload(images, source, converted)


def synthetic_slice(seed: int, size: int) -> Image.Image:
    """A fake axial slice: a textured bright ellipse (the head) on black, with a brighter blob."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    centre = size / 2
    head = ((yy - centre) / (size * 0.42)) ** 2 + ((xx - centre) / (size * 0.36)) ** 2 <= 1
    pixels = np.where(head, 80 + rng.integers(0, 50, size=(size, size)), 0)
    blob_y, blob_x = rng.uniform(0.3, 0.7, size=2) * size
    blob = (yy - blob_y) ** 2 + (xx - blob_x) ** 2 <= (size * rng.uniform(0.03, 0.1)) ** 2
    pixels[blob & head] = int(rng.integers(160, 255))
    return Image.fromarray(pixels.astype(np.uint8), "L")


def synthetic(count: int, size: int = 256) -> Workload:
    """`count` slices, alternately PNG and JPEG (the two formats most uploads come in)."""
    images = []
    for seed in range(count):
        buffer = io.BytesIO()
        if seed % 2:
            synthetic_slice(seed, size).save(buffer, format="JPEG", quality=90)
        else:
            synthetic_slice(seed, size).save(buffer, format="PNG")
        images.append(buffer.getvalue())
    return Workload(images, f"{count} synthetic {size}x{size} slices (PNG and JPEG)", 0)

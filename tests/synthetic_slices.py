"""Fake axial slices for the tests, in a module of their own so that every test folder can import
them (a folder's own conftest shadows the name `conftest`)."""

from __future__ import annotations

import numpy as np


def synthetic_slice(seed: int, size: tuple[int, int] = (96, 80)) -> np.ndarray:
    """A fake axial slice: a bright ellipse (the head) on black with a seeded blob inside."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = height / 2, width / 2
    head = ((yy - cy) / (height * 0.42)) ** 2 + ((xx - cx) / (width * 0.4)) ** 2 <= 1
    image = np.where(head, 90 + rng.integers(0, 40, size=(height, width)), 0).astype(np.float64)
    by, bx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    radius = rng.uniform(4, 14)
    blob = (yy - by) ** 2 + (xx - bx) ** 2 <= radius**2
    image[blob & head] = rng.uniform(150, 255)
    return np.clip(image, 0, 255).astype(np.uint8)

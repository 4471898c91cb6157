"""Pictures of the model's Grad-CAM heatmap: the 8-bit greyscale PNG of the JSON answer, and the
scan with the heatmap overlaid in a perceptual colour map (inferno, from the `cmap` package).

The heatmap is in [0, 1] on the canonical image's own grid (docs/model-contract.md). In the
overlay each pixel's colour weight is opacity x heat, so the scan shows through unchanged where
there is no evidence and the colour map's bright end marks the strongest.
"""

from __future__ import annotations

import base64
import io
from functools import cache

import numpy as np
from cmap import Colormap
from PIL import Image

COLOUR_MAP = "inferno"
DEFAULT_OPACITY = 0.6


def heatmap_levels(heatmap: np.ndarray) -> np.ndarray:
    """[H, W] floats in [0, 1] -> uint8 levels round(heat * 255) (the contract's rule)."""
    levels: np.ndarray = np.rint(np.clip(heatmap, 0.0, 1.0) * 255.0).astype(np.uint8)
    return levels


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def heatmap_png(heatmap: np.ndarray) -> bytes:
    """The 8-bit greyscale PNG: 0 = no evidence, 255 = the strongest evidence for tumor."""
    return _png(Image.fromarray(heatmap_levels(heatmap), "L"))


def heatmap_png_base64(heatmap: np.ndarray) -> str:
    return base64.b64encode(heatmap_png(heatmap)).decode("ascii")


@cache
def colour_table() -> np.ndarray:
    """[256, 3] uint8: the colour of each heatmap level."""
    table = Colormap(COLOUR_MAP).lut(256)[:, :3]
    return np.rint(np.asarray(table, dtype=np.float64) * 255.0).astype(np.uint8)


def palette_png() -> bytes:
    """The colour table as a 256 x 1 RGB PNG (the upload page colours heatmaps with it)."""
    return _png(Image.fromarray(colour_table()[None, :, :], "RGB"))


def overlay_png(canonical: bytes, heatmap: np.ndarray, opacity: float = DEFAULT_OPACITY) -> bytes:
    """The scan (canonical bytes, so the same grid as the heatmap) with the heatmap over it."""
    with Image.open(io.BytesIO(canonical)) as image:
        scan = np.asarray(image.convert("RGB"), dtype=np.float32)
    levels = heatmap_levels(heatmap)
    if levels.shape != scan.shape[:2]:
        raise ValueError(f"heatmap {levels.shape} does not match the image {scan.shape[:2]}")
    weight = (opacity * levels.astype(np.float32) / 255.0)[..., None]
    colours = colour_table()[levels].astype(np.float32)
    blended = scan * (1.0 - weight) + colours * weight
    return _png(Image.fromarray(np.rint(blended).astype(np.uint8), "RGB"))

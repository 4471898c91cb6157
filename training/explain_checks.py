"""Honest checks that an exported model's Grad-CAM heatmaps mean something (issue 11).

- Deletion test: on the tumour slices of one split, blank (set to black) the brain pixels with
  the top 10% heat and, separately, random 10% draws of the brain's pixels; the heatmap is
  useful where P(tumor) falls more after the first. As a control that needs no model, the
  brightest 10% of the brain's pixels are blanked the same way.
- Model-randomisation sanity check (Adebayo et al., NeurIPS 2018): the same architecture with
  re-initialised weights, exported the same way, must give different heatmaps; we report the
  Spearman rank correlation between the two inside the crop-to-brain box.

Everything runs through the exported signatures, exactly as the service calls them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from PIL import Image, ImageFilter
from scipy.stats import spearmanr

from model_contract import (
    EXPLAIN_SIGNATURE,
    HEATMAP_KEY,
    INPUT_KEY,
    OUTPUT_KEY,
    canonical_bytes,
    read_card,
)
from training.discovery import resolve_classes
from training.export import load_signature
from training.preprocessing import FOREGROUND_FRACTION, PreprocessConfig, input_box
from training.splitting import read_manifest

log = logging.getLogger(__name__)
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# P(tumor) bands of the unblanked slices: a saturated P(tumor) can hardly fall.
CONFIDENCE_BANDS = ((0.0, 0.9), (0.9, 0.99), (0.99, 1.0))


@dataclass(frozen=True)
class Slice:
    path: str  # relative to the data folder
    data: bytes  # canonical bytes


@dataclass(frozen=True)
class SliceResult:
    path: str
    p_original: float
    p_top_blanked: float
    p_brightest_blanked: float  # control: the brightest 10% of the brain, no heatmap at all
    p_random_blanked: list[float]
    positive_heat_share: float  # of the brain's pixels with heat > 0
    grey_top_blanked: float  # mean grey level (0-255) of the top-heat pixels blanked
    grey_random_blanked: float  # the same for the random draws (mean over draws)
    rank_correlation: float  # trained vs re-initialised heatmap inside the box; nan if constant


class ExplainedModel:
    """An exported version's `serving_default` and `explain` signatures."""

    def __init__(self, version_dir: Path) -> None:
        card = read_card(version_dir)
        self.config = PreprocessConfig(**card.input.preprocessing)
        self.probabilities = load_signature(version_dir)
        self._loaded = tf.saved_model.load(str(version_dir))
        self._explain = self._loaded.signatures[EXPLAIN_SIGNATURE]

    def explain(self, image: bytes) -> tuple[float, np.ndarray]:
        outputs = self._explain(**{INPUT_KEY: tf.constant(image)})
        return float(outputs[OUTPUT_KEY].numpy()), outputs[HEATMAP_KEY].numpy()


def tumour_slices(data_dir: Path, manifest: Path, split: str) -> list[Slice]:
    """The positive-class files of one manifest split, as canonical bytes, sorted by path."""
    layout = resolve_classes(data_dir, min_images_per_class=1)
    rows = sorted(
        (row for row in read_manifest(manifest)
         if row.split == split and row.label == layout.positive),
        key=lambda row: row.path,
    )
    return [Slice(row.path, canonical_bytes((data_dir / row.path).read_bytes())) for row in rows]


def grey_levels(image: np.ndarray) -> np.ndarray:
    """[H, W] float32: the brightest colour channel of each pixel (alpha left out)."""
    grey: np.ndarray = image[..., : min(3, image.shape[-1])].max(axis=-1).astype(np.float32)
    return grey


def brain_pixels(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """[H, W] mask: bright pixels (the preprocessing's foreground rule) inside the input box."""
    top, bottom, left, right = input_box(tf.constant(image), config).numpy()
    grey = grey_levels(image)
    mask = np.zeros(grey.shape, dtype=bool)
    mask[top:bottom, left:right] = True
    brain: np.ndarray = mask & (grey > FOREGROUND_FRACTION * grey.max())
    return brain


def filler(image: np.ndarray, fill: str) -> np.ndarray:
    """What blanked pixels become: black, or the image blurred (a Gaussian of radius 1/32 of
    its longer side), which removes local detail but keeps the brightness around it."""
    if fill == "black":
        return np.zeros_like(image)
    if fill != "blur":
        raise ValueError(f"unknown fill {fill!r}: black or blur")
    radius = max(image.shape[:2]) / 32
    planes = [Image.fromarray(image[..., c]).filter(ImageFilter.GaussianBlur(radius))
              for c in range(image.shape[-1])]
    return np.stack([np.asarray(plane) for plane in planes], axis=-1)


def encode_blanked(
    image: np.ndarray, blank: np.ndarray | None = None, fill: np.ndarray | None = None
) -> bytes:
    """PNG bytes of `image` with the pixels `blank` (flat indices) taken from `fill`."""
    pixels = image.copy()
    if blank is not None and fill is not None:
        colour_channels = min(3, pixels.shape[-1])  # alpha, if any, stays opaque
        flat, source = pixels.reshape(-1, pixels.shape[-1]), fill.reshape(-1, fill.shape[-1])
        flat[blank, :colour_channels] = source[blank, :colour_channels]
    return bytes(tf.io.encode_png(tf.constant(pixels)).numpy())


def top_pixels(
    heat: np.ndarray, brain: np.ndarray, count: int, rng: np.random.Generator
) -> np.ndarray:
    """The `count` brain pixels (flat indices) with the most heat; equal heat (the zeros where
    the map has no evidence) in random order, not in raster order."""
    shuffled = rng.permutation(brain)
    return shuffled[np.argsort(-heat.ravel()[shuffled], kind="stable")[:count]]


def check_slice(
    item: Slice,
    trained: ExplainedModel,
    randomised: ExplainedModel,
    rng: np.random.Generator,
    fraction: float,
    draws: int,
    fill: str = "black",
) -> SliceResult:
    """Deletion test (with the brightest-pixels control) and rank correlation for one slice."""
    image = tf.io.decode_image(item.data, expand_animations=False).numpy()
    _, heat = trained.explain(item.data)
    _, random_heat = randomised.explain(item.data)
    brain = np.flatnonzero(brain_pixels(image, trained.config))
    count = max(1, round(fraction * brain.size))
    grey = grey_levels(image)
    hottest = top_pixels(heat, brain, count, rng)
    brightest = top_pixels(grey, brain, count, rng)
    randoms = [rng.choice(brain, count, replace=False) for _ in range(draws)]
    # The unblanked image goes through the same PNG re-encoding as the blanked ones, so only
    # the blanking differs between the probabilities.
    fills = filler(image, fill)
    images = [encode_blanked(image), encode_blanked(image, hottest, fills),
              encode_blanked(image, brightest, fills),
              *(encode_blanked(image, r, fills) for r in randoms)]
    probabilities = trained.probabilities(images)
    return SliceResult(
        path=item.path,
        p_original=float(probabilities[0]),
        p_top_blanked=float(probabilities[1]),
        p_brightest_blanked=float(probabilities[2]),
        p_random_blanked=[float(p) for p in probabilities[3:]],
        positive_heat_share=float(np.mean(heat.ravel()[brain] > 0)),
        grey_top_blanked=float(grey.ravel()[hottest].mean()),
        grey_random_blanked=float(np.mean([grey.ravel()[r].mean() for r in randoms])),
        rank_correlation=box_rank_correlation(heat, random_heat, image, trained.config),
    )


def box_rank_correlation(
    heat: np.ndarray, other: np.ndarray, image: np.ndarray, config: PreprocessConfig
) -> float:
    top, bottom, left, right = input_box(tf.constant(image), config).numpy()
    a, b = heat[top:bottom, left:right].ravel(), other[top:bottom, left:right].ravel()
    if a.min() == a.max() or b.min() == b.max():
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _quantiles(values: np.ndarray) -> dict[str, float]:
    return {f"q{round(q * 100):02d}": float(np.quantile(values, q)) for q in QUANTILES}


def _by_confidence(p0: np.ndarray, falls_more: np.ndarray) -> dict[str, dict[str, float]]:
    bands = {}
    for low, high in CONFIDENCE_BANDS:
        inside = (p0 >= low) & ((p0 < high) if high < 1.0 else (p0 <= high))
        bands[f"{low:g}-{high:g}"] = {
            "slices": int(inside.sum()),
            "share_top_falls_more": float(falls_more[inside].mean()) if inside.any() else 0.0,
        }
    return bands


def summarise(results: Sequence[SliceResult], fraction: float) -> dict[str, Any]:
    """The distributions and shares the model report quotes."""
    p0 = np.array([r.p_original for r in results])
    drop_top = p0 - np.array([r.p_top_blanked for r in results])
    drops_random = p0[:, None] - np.array([r.p_random_blanked for r in results])
    drop_random = drops_random.mean(axis=1)
    correlations = np.array([r.rank_correlation for r in results])
    defined = correlations[~np.isnan(correlations)]
    falls_more = drop_top > drop_random
    drop_brightest = p0 - np.array([r.p_brightest_blanked for r in results])
    return {
        "slices": len(results),
        "fraction_blanked": fraction,
        "random_draws_per_slice": int(drops_random.shape[1]),
        "deletion": {
            "share_top_falls_more_than_random_mean": float(np.mean(falls_more)),
            "share_top_falls_more_than_each_random_draw": float(
                np.mean(drop_top[:, None] > drops_random)
            ),
            "drop_top": _quantiles(drop_top),
            "drop_random_mean": _quantiles(drop_random),
            "difference": _quantiles(drop_top - drop_random),
            "slices_with_heat_on_under_fraction_of_brain": int(
                sum(r.positive_heat_share < fraction for r in results)
            ),
            "control_brightest": {
                "share_falls_more_than_random_mean": float(np.mean(drop_brightest > drop_random)),
                "difference": _quantiles(drop_brightest - drop_random),
                "share_top_heat_falls_more_than_brightest": float(
                    np.mean(drop_top > drop_brightest)
                ),
            },
            "grey_blanked": {
                "top": _quantiles(np.array([r.grey_top_blanked for r in results])),
                "random": _quantiles(np.array([r.grey_random_blanked for r in results])),
            },
            "p_original": _quantiles(p0),
            "share_rising_after_top": float(np.mean(drop_top < 0)),
            "share_rising_after_random_mean": float(np.mean(drop_random < 0)),
            "by_p_original": _by_confidence(p0, falls_more),
        },
        "randomisation": {
            "mean_rank_correlation": float(defined.mean()) if defined.size else float("nan"),
            "rank_correlation": _quantiles(defined) if defined.size else {},
            "undefined": int(np.isnan(correlations).sum()),
            "share_at_or_above_0.5": float(np.mean(defined >= 0.5)) if defined.size else 0.0,
        },
    }

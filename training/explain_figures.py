"""Figures of the Grad-CAM checks: example overlays and the distributions behind the figures.

The example figure is small and downscaled on purpose: it is the only image derived from the
data set that the repository keeps (docs/model-report/).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot's import

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from training.explain_checks import SliceResult  # noqa: E402

COLOUR_MAP = "inferno"
THUMBNAIL = 96  # pixels, the longer side of each example panel
DPI = 100


def _thumbnail(values: np.ndarray, resample: Image.Resampling) -> np.ndarray:
    image = Image.fromarray(values)
    image.thumbnail((THUMBNAIL, THUMBNAIL), resample)
    return np.asarray(image)


def _overlay_layer(heatmap: np.ndarray, opacity: float) -> np.ndarray:
    """RGBA thumbnail of a heatmap: the colour map's colour, alpha = opacity x heat, as the
    service's overlay (no evidence leaves the scan as it is)."""
    levels = np.rint(np.clip(heatmap, 0.0, 1.0) * 255).astype(np.uint8)
    heat = _thumbnail(levels, Image.Resampling.BILINEAR).astype(np.float64) / 255.0
    layer: np.ndarray = plt.get_cmap(COLOUR_MAP)(heat)
    layer[..., 3] = opacity * heat
    return layer


def plot_examples(
    scans: Sequence[np.ndarray],
    heatmaps: Sequence[np.ndarray],
    random_heatmaps: Sequence[np.ndarray],
    path: Path,
    opacity: float = 0.6,
) -> Path:
    """One column per slice: the scan, the trained model's overlay, the re-initialised one's."""
    rows = [("scan", None), ("Grad-CAM, trained", heatmaps),
            ("Grad-CAM, re-initialised", random_heatmaps)]
    figure, axes = plt.subplots(len(rows), len(scans), figsize=(1.3 * len(scans), 4.3),
                                squeeze=False, layout="constrained")
    for column, scan in enumerate(scans):
        brightest = scan[..., : min(3, scan.shape[-1])].max(axis=-1)
        grey = _thumbnail(brightest, Image.Resampling.BICUBIC)
        for row, (title, maps) in enumerate(rows):
            axis = axes[row][column]
            axis.imshow(grey, cmap="gray", vmin=0, vmax=255)
            if maps is not None:
                axis.imshow(_overlay_layer(maps[column], opacity))
            axis.set_axis_off()
            if column == 0:
                axis.set_title(title, fontsize=7, loc="left")
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=DPI)
    plt.close(figure)
    # 256 colours are plenty for a downscaled figure and keep it small in the repository.
    Image.open(buffer).convert("RGB").quantize(256).save(path, optimize=True)
    return path


def plot_distributions(results: Sequence[SliceResult], path: Path) -> Path:
    """Histograms: P(tumor) drops after each blanking, and the rank correlations."""
    p0 = np.array([r.p_original for r in results])
    drop_top = p0 - np.array([r.p_top_blanked for r in results])
    drop_random = p0 - np.array([np.mean(r.p_random_blanked) for r in results])
    correlations = np.array([r.rank_correlation for r in results])
    figure, axes = plt.subplots(1, 3, figsize=(11, 3.0))
    bins = np.linspace(-0.2, 1.0, 49)
    axes[0].hist(drop_top, bins=bins, alpha=0.7, label="top-10% heat blanked")
    axes[0].hist(drop_random, bins=bins, alpha=0.7, label="random 10% of brain blanked")
    axes[0].set(xlabel="fall in P(tumor)", ylabel="slices", title="Deletion test")
    axes[0].legend(fontsize=7)
    axes[1].hist(drop_top - drop_random, bins=np.linspace(-0.5, 1.0, 61), color="tab:green")
    axes[1].axvline(0.0, color="black", linewidth=0.8)
    axes[1].set(xlabel="fall after top-heat minus fall after random", ylabel="slices",
                title="Deletion test, per slice")
    axes[2].hist(correlations[~np.isnan(correlations)], bins=np.linspace(-1, 1, 41),
                 color="tab:purple")
    axes[2].axvline(0.5, color="black", linewidth=0.8, linestyle="--")
    axes[2].set(xlabel="Spearman rank correlation inside the brain box", ylabel="slices",
                title="Trained vs re-initialised weights")
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path

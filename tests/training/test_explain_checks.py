"""The Grad-CAM checks of the model report (training/explain_checks.py) on synthetic slices."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.explain_checks import (
    ExplainedModel,
    Slice,
    SliceResult,
    brain_pixels,
    check_slice,
    filler,
    summarise,
    top_pixels,
)
from training.preprocessing import PreprocessConfig


def _result(
    p0: float, top: float, randoms: list[float], rho: float = 0.1, brightest: float = 0.0
) -> SliceResult:
    return SliceResult("x.png", p0, top, brightest, randoms, 0.5, 200.0, 100.0, rho)


def test_summary_shares_and_distributions() -> None:
    results = [
        _result(0.9, 0.2, [0.8, 0.9]),  # falls more after the top-heat blanking
        _result(0.9, 0.85, [0.5, 0.7]),  # falls less
        _result(0.6, 0.1, [0.5, 0.7], rho=float("nan"), brightest=0.7),  # undefined correlation
    ]
    summary = summarise(results, 0.1)
    deletion = summary["deletion"]
    assert deletion["share_top_falls_more_than_random_mean"] == pytest.approx(2 / 3)
    assert deletion["share_top_falls_more_than_each_random_draw"] == pytest.approx(4 / 6)
    assert deletion["drop_top"]["q50"] == pytest.approx(0.5)
    control = deletion["control_brightest"]
    assert control["share_falls_more_than_random_mean"] == pytest.approx(2 / 3)
    assert control["share_top_heat_falls_more_than_brightest"] == pytest.approx(1 / 3)
    assert summary["randomisation"]["undefined"] == 1
    assert summary["randomisation"]["mean_rank_correlation"] == pytest.approx(0.1)


def test_brain_pixels_are_bright_pixels_inside_the_box() -> None:
    image = np.zeros((40, 50, 1), dtype=np.uint8)
    image[10:30, 5:45] = 200
    image[12, 8] = 5  # dark, inside the box: not brain
    mask = brain_pixels(image, PreprocessConfig(16, 1, True))
    assert mask.sum() == 20 * 40 - 1
    assert not mask[12, 8] and mask[10, 5] and not mask[9, 5]


def test_top_pixels_break_ties_at_random_not_in_raster_order() -> None:
    heat = np.zeros((20, 20), dtype=np.float32)
    heat[15, 15], heat[16, 16] = 1.0, 0.5
    brain = np.arange(400)
    top = top_pixels(heat, brain, 40, np.random.default_rng(0))
    assert list(top[:2]) == [15 * 20 + 15, 16 * 20 + 16]  # the hottest first, in heat order
    rest = top[2:]
    assert len(set(rest.tolist())) == 38 and rest.max() >= 200  # zeros drawn from everywhere


def test_fillers() -> None:
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[:, 16:] = 255
    assert not filler(image, "black").any()
    blurred = filler(image, "blur")
    assert blurred.shape == image.shape
    assert 0 < blurred[16, 16, 0] < 255  # the edge is smoothed
    with pytest.raises(ValueError, match="unknown fill"):
        filler(image, "grey")


def test_check_slice_against_itself(
    exported_version_dir: Path, slice_png: Callable[[int, int, int], bytes]
) -> None:
    """The model checked against itself: identical heatmaps (rank correlation 1), and the
    three probabilities are the exported model's for the three images."""
    model = ExplainedModel(exported_version_dir)
    data = slice_png(7, 90, 110)
    result = check_slice(Slice("s.png", data), model, model, np.random.default_rng(0), 0.1, 3)
    assert result.rank_correlation == pytest.approx(1.0)
    assert len(result.p_random_blanked) == 3
    assert result.p_original == pytest.approx(float(model.probabilities([data])[0]), abs=1e-6)
    assert 0.0 < result.positive_heat_share <= 1.0
    assert 0.0 <= result.p_brightest_blanked <= 1.0
    assert 0.0 <= result.grey_random_blanked <= 255.0
    assert result.p_top_blanked != result.p_original
    assert Image.open(io.BytesIO(data)).size == (90, 110)

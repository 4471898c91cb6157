"""Metrics, bootstrap intervals, the threshold rule and the metadata-only baseline."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from training.baseline import fit_metadata_baseline
from training.evaluation import (
    bootstrap_intervals,
    choose_threshold,
    evaluate_scores,
    point_metrics,
    reliability_curve,
    rowwise_average_precision,
    rowwise_roc_auc,
)
from training.images import ImageMetadata


def test_vectorised_auc_and_average_precision_match_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(50, 40))
    scores = np.round(rng.random((50, 40)), 1)  # many ties
    assert np.allclose(rowwise_roc_auc(labels, scores),
                       [roc_auc_score(y, s) for y, s in zip(labels, scores, strict=True)])
    assert np.allclose(rowwise_average_precision(labels, scores),
                       [average_precision_score(y, s) for y, s in zip(labels, scores, strict=True)])
    one_class = np.ones((1, 5), dtype=int)
    assert np.isnan(rowwise_roc_auc(one_class, np.linspace(0, 1, 5)[None, :]))[0]


def test_point_metrics_from_a_known_confusion_matrix() -> None:
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.1, 0.1, 0.3, 0.2, 0.4])
    metrics = point_metrics(labels, scores, threshold=0.5)
    assert (metrics["tp"], metrics["fn"], metrics["fp"], metrics["tn"]) == (3, 1, 1, 5)
    assert metrics["accuracy"] == pytest.approx(0.8)
    assert metrics["precision"] == pytest.approx(0.75)
    assert metrics["recall"] == pytest.approx(0.75)
    assert metrics["specificity"] == pytest.approx(5 / 6)
    assert metrics["f1"] == pytest.approx(0.75)
    assert metrics["brier"] == pytest.approx(float(np.mean((scores - labels) ** 2)))


def test_threshold_keeps_validation_recall_then_maximises_youden() -> None:
    labels = np.array([1] * 20 + [0] * 20)
    positives = np.linspace(0.3, 0.95, 20)
    negatives = np.linspace(0.05, 0.6, 20)
    scores = np.concatenate([positives, negatives])
    choice = choose_threshold(labels, scores, min_recall=0.95)
    predicted = scores >= choice.value
    recall = predicted[labels == 1].mean()
    assert recall >= 0.95
    # No other threshold with recall >= 0.95 has a better J.
    best_j = max(
        (scores[labels == 1] >= t).mean() - (scores[labels == 0] >= t).mean()
        for t in scores if (scores[labels == 1] >= t).mean() >= 0.95
    )
    assert choice.validation["youden_j"] == pytest.approx(best_j)
    # Without the recall floor, the J-optimal threshold is higher here.
    assert choose_threshold(labels, scores, min_recall=0.5).value > choice.value


def test_bootstrap_intervals_contain_the_estimate_and_shrink_with_n() -> None:
    rng = np.random.default_rng(1)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 2, n)
        return labels, np.clip(labels * 0.4 + rng.random(n) * 0.6, 0, 1)

    small, large = sample(60), sample(2000)
    small_ci = bootstrap_intervals(*small, threshold=0.5, resamples=300, seed=0)
    large_ci = bootstrap_intervals(*large, threshold=0.5, resamples=300, seed=0)
    block = evaluate_scores(*small, threshold=0.5, split="test", resamples=300, seed=0)
    for name in ("accuracy", "recall", "specificity", "roc_auc", "pr_auc", "brier"):
        low, high = block[name]["ci95"]
        assert low <= block[name]["value"] <= high, name
        assert (large_ci[name][1] - large_ci[name][0]) < (small_ci[name][1] - small_ci[name][0])
    counts = block["confusion_matrix"]
    assert sum(counts[k]["value"] for k in ("tn", "fp", "fn", "tp")) == block["n"] == 60
    assert bootstrap_intervals(*small, threshold=0.5, resamples=300, seed=0) == small_ci


def test_reliability_curve_bins_and_calibration_error() -> None:
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.05, 0.15, 0.85, 0.95])
    curve = reliability_curve(labels, scores, bins=10)
    counts = [b["count"] for b in curve["bins"]]
    assert counts == [1, 1, 0, 0, 0, 0, 0, 0, 1, 1]
    assert curve["expected_calibration_error"] == pytest.approx(0.1)


def test_metadata_baseline_learns_a_file_origin_shortcut() -> None:
    tumor = [ImageMetadata(512, 512, "L", "JPEG")] * 30
    healthy = [ImageMetadata(225, 225, "RGB", "JPEG")] * 30
    baseline = fit_metadata_baseline(tumor + healthy, np.array([1] * 30 + [0] * 30))
    scores = baseline.predict([ImageMetadata(512, 512, "L", "JPEG"),
                               ImageMetadata(225, 225, "RGB", "JPEG"),
                               ImageMetadata(300, 300, "CMYK", "TIFF")])
    assert scores[0] == 1.0 and scores[1] == 0.0
    assert 0.0 <= scores[2] <= 1.0  # unseen mode and format: still a probability

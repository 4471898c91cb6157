"""Temperature scaling fitted on out-of-fold predictions, and its before/after figures.

P(tumor) = sigmoid(mean member logit / T). T is the one number minimising the log-loss of the
out-of-fold predictions (Guo et al., ICML 2017); it changes no ranking, so ROC-AUC and the
order of slices stay as they are, only the probabilities move. The expected calibration error
(ECE, 10 equal-width bins, as in evaluation.reliability_curve) is reported before and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.optimize import minimize_scalar  # noqa: E402
from sklearn.calibration import CalibrationDisplay  # noqa: E402

from training.ensemble import sigmoid  # noqa: E402
from training.evaluation import reliability_curve  # noqa: E402

RELIABILITY_FILE = "reliability_before_after.png"
# log(T) is searched in [-3, 3]: T from 0.05 to 20, far wider than any sane fit.
LOG_TEMPERATURE_BOUNDS = (-3.0, 3.0)


def log_loss(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of sigmoid(logits), computed stably."""
    y = np.asarray(labels, dtype=np.float64)
    z = np.asarray(logits, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(labels: np.ndarray, logits: np.ndarray) -> float:
    """The temperature T minimising the log-loss of sigmoid(logits / T)."""
    result = minimize_scalar(
        lambda log_t: log_loss(labels, np.asarray(logits) / np.exp(log_t)),
        bounds=LOG_TEMPERATURE_BOUNDS, method="bounded",
    )
    return float(np.exp(result.x))


def calibration_section(labels: np.ndarray, logits: np.ndarray, temperature: float,
                        split: str) -> dict[str, Any]:
    """ECE, Brier and log-loss of one split's scores before and after temperature scaling."""
    before, after = sigmoid(logits), sigmoid(np.asarray(logits) / temperature)
    y = np.asarray(labels, dtype=np.float64)

    def figures(scores: np.ndarray, z: np.ndarray) -> dict[str, Any]:
        curve = reliability_curve(labels, scores)
        return {"expected_calibration_error": curve["expected_calibration_error"],
                "brier": float(np.mean((scores - y) ** 2)),
                "log_loss": log_loss(labels, z),
                "reliability": curve["bins"]}

    return {"split": split, "before": figures(before, np.asarray(logits)),
            "after": figures(after, np.asarray(logits) / temperature)}


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                     temperature: float, path: Path) -> Path:
    """Reliability diagrams before and after scaling, one panel per split:
    `curves` maps a split's title to (labels, scores before, scores after)."""
    figure, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 5), squeeze=False)
    for axis, (title, (labels, before, after)) in zip(axes[0], curves.items(), strict=True):
        for scores, name in ((before, "before"), (after, f"after (T = {temperature:.2f})")):
            ece = reliability_curve(labels, scores)["expected_calibration_error"]
            CalibrationDisplay.from_predictions(labels, scores, n_bins=10, ax=axis,
                                                name=f"{name}, ECE {ece:.3f}")
        axis.set_title(title)
        axis.set_xlabel("predicted P(tumor)")
        axis.set_ylabel("observed tumor rate")
        axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path

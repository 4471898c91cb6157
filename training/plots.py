"""PNG figures of a run: training curves, and scikit-learn's ROC, precision-recall, confusion
matrix and calibration displays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot's import

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.calibration import CalibrationDisplay  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    RocCurveDisplay,
)

from training.evaluation import reliability_curve  # noqa: E402

DPI = 110
PLOT_FILES = {
    "training_curves": "training_curves.png",
    "roc": "roc.png",
    "pr": "pr.png",
    "confusion_matrix": "confusion_matrix.png",
    "calibration": "calibration.png",
}


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=DPI, bbox_inches="tight")  # keeps long class names in frame
    plt.close(figure)
    return path


def plot_training_curves(history: dict[str, list[float]], best_epoch: int, path: Path) -> Path:
    panels = [("loss", "loss"), ("accuracy", "accuracy"), ("auc", "ROC-AUC")]
    has_rate = "learning_rate" in history
    figure, axes = plt.subplots(1, len(panels) + int(has_rate), figsize=(4.2 * 4, 3.6))
    for axis, (key, title) in zip(axes, panels, strict=False):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = history.get(prefix + key)
            if values:
                axis.plot(range(1, len(values) + 1), values, marker=".", label=label)
        axis.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label="best epoch")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend()
    if has_rate:
        axis = axes[-1]
        rates = history["learning_rate"]
        axis.plot(range(1, len(rates) + 1), rates, marker=".")
        axis.set_yscale("log")
        axis.set_title("learning rate")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(figure, path)


def _both_classes(labels: np.ndarray) -> bool:
    return len(set(np.asarray(labels).tolist())) == 2


def _ci(metric: dict[str, Any]) -> str:
    return f"95% CI [{metric['ci95'][0]:.3f}, {metric['ci95'][1]:.3f}]"


def plot_roc(labels: np.ndarray, scores: np.ndarray, metrics: dict[str, Any], path: Path,
             title: str) -> Path:
    figure, axis = plt.subplots(figsize=(5, 5))
    if _both_classes(labels):
        RocCurveDisplay.from_predictions(labels, scores, name=f"CNN, {_ci(metrics['roc_auc'])}",
                                         ax=axis, plot_chance_level=True)
        axis.plot([1 - metrics["specificity"]["value"]], [metrics["recall"]["value"]], "o",
                  color="crimson", label=f"threshold {metrics['threshold']:.3f}")
    axis.set_xlabel("false positive rate (1 - specificity)")
    axis.set_ylabel("true positive rate (recall)")
    axis.set_title(title)
    axis.legend(loc="lower right")
    return _save(figure, path)


def plot_pr(labels: np.ndarray, scores: np.ndarray, metrics: dict[str, Any], path: Path,
            title: str) -> Path:
    figure, axis = plt.subplots(figsize=(5, 5))
    if _both_classes(labels):
        PrecisionRecallDisplay.from_predictions(
            labels, scores, name=f"CNN, {_ci(metrics['pr_auc'])}", ax=axis,
            plot_chance_level=True,
        )
        axis.plot([metrics["recall"]["value"]], [metrics["precision"]["value"]], "o",
                  color="crimson", label=f"threshold {metrics['threshold']:.3f}")
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.set_ylim(0, 1.02)
    axis.set_title(title)
    axis.legend(loc="lower left")
    return _save(figure, path)


def plot_confusion_matrix(metrics: dict[str, Any], classes: list[str], path: Path,
                          title: str) -> Path:
    counts = metrics["confusion_matrix"]
    matrix = np.array([[counts["tn"]["value"], counts["fp"]["value"]],
                       [counts["fn"]["value"], counts["tp"]["value"]]])
    figure, axis = plt.subplots(figsize=(4.6, 4.2))
    ConfusionMatrixDisplay(matrix, display_labels=classes).plot(
        ax=axis, cmap="Blues", colorbar=False
    )
    axis.set_title(f"{title}\nthreshold {metrics['threshold']:.3f}")
    return _save(figure, path)


def plot_calibration(labels: np.ndarray, scores: np.ndarray, metrics: dict[str, Any], path: Path,
                     title: str) -> Path:
    ece = reliability_curve(labels, scores)["expected_calibration_error"]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    if _both_classes(labels):
        CalibrationDisplay.from_predictions(
            labels, scores, n_bins=10, ax=top,
            name=f"Brier {metrics['brier']['value']:.3f}, ECE {ece:.3f}",
        )
    top.set_xlabel("")
    top.set_ylabel("observed tumor rate")
    top.set_title(title)
    top.legend(loc="upper left")
    bottom.hist(np.asarray(scores, dtype=np.float64), bins=20, range=(0, 1), color="grey")
    bottom.set_xlabel("predicted P(tumor)")
    bottom.set_ylabel("images")
    return _save(figure, path)


def plot_evaluation(labels: np.ndarray, scores: np.ndarray, metrics: dict[str, Any],
                    classes: list[str], out_dir: Path, title: str) -> dict[str, str]:
    """The four evaluation figures; returns {figure: file name}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_roc(labels, scores, metrics, out_dir / PLOT_FILES["roc"], f"ROC, {title}")
    plot_pr(labels, scores, metrics, out_dir / PLOT_FILES["pr"], f"Precision-recall, {title}")
    plot_confusion_matrix(metrics, classes, out_dir / PLOT_FILES["confusion_matrix"],
                          f"Confusion matrix, {title}")
    plot_calibration(labels, scores, metrics, out_dir / PLOT_FILES["calibration"],
                     f"Calibration, {title}")
    return {key: PLOT_FILES[key] for key in ("roc", "pr", "confusion_matrix", "calibration")}

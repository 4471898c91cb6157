"""PNG figures of a run: training curves, ROC, precision-recall, confusion matrix, calibration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window; must precede pyplot's import

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from training.evaluation import curves, reliability_curve  # noqa: E402

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


def plot_roc(labels: np.ndarray, scores: np.ndarray, metrics: dict[str, Any], path: Path,
             title: str) -> Path:
    points = curves(labels, scores)["roc"]
    figure, axis = plt.subplots(figsize=(5, 5))
    if points is not None:
        auc = metrics["roc_auc"]
        axis.plot(points["fpr"], points["tpr"],
                  label=f"ROC-AUC {auc['value']:.3f} [{auc['ci95'][0]:.3f}, {auc['ci95'][1]:.3f}]")
        axis.plot([1 - metrics["specificity"]["value"]], [metrics["recall"]["value"]], "o",
                  color="crimson", label=f"threshold {metrics['threshold']:.3f}")
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axis.set_xlabel("false positive rate (1 - specificity)")
    axis.set_ylabel("true positive rate (recall)")
    axis.set_title(title)
    axis.legend(loc="lower right")
    return _save(figure, path)


def plot_pr(labels: np.ndarray, scores: np.ndarray, metrics: dict[str, Any], path: Path,
            title: str) -> Path:
    points = curves(labels, scores)["pr"]
    figure, axis = plt.subplots(figsize=(5, 5))
    if points is not None:
        ap = metrics["pr_auc"]
        axis.plot(points["recall"], points["precision"],
                  label=f"PR-AUC {ap['value']:.3f} [{ap['ci95'][0]:.3f}, {ap['ci95'][1]:.3f}]")
        axis.plot([metrics["recall"]["value"]], [metrics["precision"]["value"]], "o",
                  color="crimson", label=f"threshold {metrics['threshold']:.3f}")
    prevalence = metrics["n_positive"] / max(metrics["n"], 1)
    axis.axhline(prevalence, linestyle=":", color="grey", label=f"prevalence {prevalence:.2f}")
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
    axis.imshow(matrix, cmap="Blues")
    for row in range(2):
        for col in range(2):
            colour = "white" if matrix[row, col] > matrix.max() / 2 else "black"
            axis.text(col, row, str(matrix[row, col]), ha="center", va="center", color=colour,
                      fontsize=14)
    axis.set_xticks([0, 1], [f"pred. {c}" for c in classes])
    axis.set_yticks([0, 1], [f"true {c}" for c in classes])
    axis.set_title(f"{title}\nthreshold {metrics['threshold']:.3f}")
    return _save(figure, path)


def plot_calibration(labels: np.ndarray, scores: np.ndarray, metrics: dict[str, Any], path: Path,
                     title: str) -> Path:
    curve = reliability_curve(labels, scores)
    filled = [b for b in curve["bins"] if b["count"]]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    top.plot([b["mean_predicted"] for b in filled], [b["observed_positive_rate"] for b in filled],
             marker="o", label=f"Brier {metrics['brier']['value']:.3f}, "
             f"ECE {curve['expected_calibration_error']:.3f}")
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

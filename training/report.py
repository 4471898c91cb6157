"""The run's machine-readable report (report.json) and the shared pieces both commands write."""

from __future__ import annotations

import csv
import json
import logging
import math
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from training.discovery import ScanResult
from training.evaluation import curves, evaluate_scores, reliability_curve
from training.grouping import Grouping
from training.plots import plot_evaluation

logger = logging.getLogger(__name__)

REPORT_FILE = "report.json"
HEADLINE_METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "pr_auc")
PREDICTIONS_FILE = "predictions.csv"
_DISTRIBUTIONS = {
    "tensorflow": "tensorflow-cpu",
    "keras": "keras",
    "numpy": "numpy",
    "scikit-learn": "scikit-learn",
    "pillow": "pillow",
    "imagehash": "ImageHash",
}


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name, distribution in _DISTRIBUTIONS.items():
        try:
            versions[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            if name == "tensorflow":
                try:
                    versions[name] = metadata.version("tensorflow")
                    continue
                except metadata.PackageNotFoundError:
                    pass
            versions[name] = "not installed"
    return versions


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_ready(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        return json_ready(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_FILE
    path.write_text(json.dumps(json_ready(report), indent=2, allow_nan=False) + "\n")
    return path


def data_section(scan: ScanResult) -> dict[str, Any]:
    """What was found in the data folder, with every unreadable file and its reason."""
    return {
        "dir": str(scan.layout.data_dir),
        "class_folders": scan.layout.classes,
        "positive_class_folder": scan.layout.positive,
        "readable_images": scan.counts(),
        "unreadable_files": [
            {"path": u.path, "class": u.class_name, "reason": u.reason} for u in scan.unreadable
        ],
    }


def grouping_section(grouping: Grouping, dropped_conflicts: bool) -> dict[str, Any]:
    return {
        **grouping.summary(),
        "label_conflict_policy": (
            "excluded from every split (--drop-label-conflicts)" if dropped_conflicts
            else "kept, each file with its folder's label; the whole group in one split"
        ),
        "label_conflicts": [
            {
                "group": c.group,
                "min_cross_label_distance": c.min_cross_label_distance,
                "files": [{"path": p, "label": y} for p, y in zip(c.paths, c.labels, strict=True)],
            }
            for c in grouping.conflicts
        ],
    }


@dataclass(frozen=True)
class Plots:
    """Where an evaluation's figures go and what they are called."""

    out_dir: Path
    classes: list[str]
    title: str


def evaluation_section(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    threshold: float,
    split: str,
    resamples: int,
    seed: int,
    plots: Plots | None = None,
) -> dict[str, Any]:
    """Metrics with CIs, reliability curve, ROC/PR points and (optionally) the plots."""
    metrics = evaluate_scores(labels, scores, threshold, split, resamples, seed)
    section: dict[str, Any] = {
        "metrics": metrics,
        "reliability": reliability_curve(labels, scores),
        "curves": curves(labels, scores),
    }
    if plots is not None:
        section["plots"] = plot_evaluation(
            labels, scores, metrics, plots.classes, plots.out_dir, plots.title
        )
    return section


def log_metrics(heading: str, metrics: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    """The headline figures with their intervals (and the baseline's beside them)."""
    logger.info("%s (%d images)%s:", heading, metrics["n"],
                ", CNN vs metadata-only baseline" if baseline else "")
    for name in HEADLINE_METRICS:
        line = f"  {name:<12} {_with_ci(metrics[name])}"
        if baseline is not None:
            line += f"   baseline {_with_ci(baseline[name])}"
        logger.info("%s", line)


def _with_ci(metric: dict[str, Any]) -> str:
    value, (low, high) = metric["value"], metric["ci95"]
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def write_predictions(
    path: Path, rows: list[tuple[str, str, int, float]], threshold: float
) -> None:
    """Per-image scores (path, split, label, P(tumor), predicted), to look at the mistakes."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "split", "label", "p_tumor", "predicted"])
        for image_path, split, label, score in rows:
            writer.writerow([image_path, split, label, f"{score:.6f}", int(score >= threshold)])

"""The training run's report.json and predictions.csv, from what the run's steps produced."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import roc_auc_score

from model_contract import card_to_dict
from training.baseline import DESCRIPTION as BASELINE_DESCRIPTION
from training.calibration import log_loss
from training.fold_fitting import FOLDS_DIR
from training.folds import FOLDS_FILE
from training.report import (
    PREDICTIONS_FILE,
    data_section,
    grouping_section,
    log_metrics,
    now_utc,
    write_predictions,
    write_report,
)

if TYPE_CHECKING:
    from training.cross_validation import CrossValidation
    from training.train_run import Outcome, TrainOptions

logger = logging.getLogger(__name__)
MANIFEST_FILE = "manifest.csv"


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    return float(roc_auc_score(labels, scores)) if len(set(labels.tolist())) == 2 else None


def members_section(cv: CrossValidation) -> dict[str, Any]:
    """Out-of-fold figures per fold model and for the pooled predictions, with and without
    flip TTA: the evidence for (or against) test-time flipping, measured without the test."""
    per_fold = []
    for result in cv.results:
        labels = cv.labels[result.held_out]
        per_fold.append({
            "fold": result.fold + 1,
            "held_out": len(result.held_out),
            "roc_auc": _auc(labels, result.scores),
            "roc_auc_flip_tta": _auc(labels, (result.scores + result.scores_flipped) / 2),
            "seconds": round(result.seconds, 1),
            "resumed": result.resumed,
        })
    pooled = {}
    for name, flip in (("plain", False), ("flip_tta", True)):
        logits = cv.oof_logits(flip)
        pooled[name] = {"roc_auc": _auc(cv.labels, logits), "log_loss": log_loss(cv.labels, logits)}
    aucs = [f["roc_auc"] for f in per_fold if f["roc_auc"] is not None]
    return {"per_fold": per_fold, "pooled_out_of_fold": pooled,
            "fold_roc_auc_spread": {"min": min(aucs, default=None),
                                    "max": max(aucs, default=None),
                                    "std": float(np.std(aucs)) if aucs else None}}


def report(outcome: Outcome, options: TrainOptions, *, seconds: float) -> Path:
    """predictions.csv (out-of-fold and test) and report.json; the headline figures logged."""
    evaluation, data, cv = outcome.evaluation, outcome.data, outcome.cv
    threshold = outcome.card.threshold
    rows = [(r.path, "out_of_fold", r.label, float(s))
            for r, s in zip(cv.records, outcome.ensemble.oof_scores, strict=True)]
    rows += [(r.path, "test", r.label, float(s))
             for r, s in zip(data.records["test"], evaluation.test_scores, strict=True)]
    write_predictions(options.run_dir / PREDICTIONS_FILE, rows, threshold)
    sections = evaluation.sections
    report_path = write_report({
        "kind": "train",
        "created_at": now_utc(),
        "command": list(options.command),
        **_run_sections(outcome, options),
        "operating_points": card_to_dict(outcome.card)["operating_points"],
        "test": sections["test"],
        "out_of_fold": {"note": "each development slice scored by the fold model that never "
                                "saw its group; calibrated as exported",
                        **sections["out_of_fold"]},
        "calibration": evaluation.calibration,
        "input_gate": None if outcome.gate is None else outcome.gate[1].report_section(
            outcome.gate[0]),
        "members": members_section(cv),
        "baseline_metadata_only": {
            "description": BASELINE_DESCRIPTION,
            "threshold": evaluation.baseline_threshold.value,
            "validation_at_threshold": evaluation.baseline_threshold.validation,
            **sections["baseline"],
        },
        "plots": {**sections["test"].get("plots", {}),
                  "reliability_before_after": evaluation.calibration["plot"]},
        "predictions": PREDICTIONS_FILE,
        "library_versions": outcome.card.library_versions,
        "seconds_total": round(seconds, 1),
    }, options.run_dir)
    log_metrics("test split, default operating point", sections["test"]["metrics"],
                sections["baseline"]["metrics"])
    logger.info("report: %s", report_path)
    return report_path


def _run_sections(outcome: Outcome, options: TrainOptions) -> dict[str, Any]:
    """What was trained on what: the model, the data, the grouping, the split, the folds."""
    card, data = outcome.card, outcome.data
    return {
        "model": {
            "published": outcome.version_dir is not None,
            "not_published_because": outcome.refused,
            "exported_to": None if outcome.version_dir is None else str(outcome.version_dir),
            "name": card.name,
            "version": card.version if outcome.version_dir is not None else None,
            "architecture": card.architecture,
            "preprocess": options.training.preprocess().to_dict(),
            "export_max_abs_difference": outcome.evaluation.export_difference,
        },
        "data": data_section(outcome.scan),
        "grouping": grouping_section(outcome.grouping, options.drop_label_conflicts),
        "split": {
            "manifest": MANIFEST_FILE,
            "folds": FOLDS_FILE,
            "data_fingerprint": data.fingerprint,
            "fractions": list(options.fractions.as_tuple()),
            "seed": options.training.seed,
            "counts": data.counts,
        },
        "training": {
            **(card.training or {}),
            "fold_folders": f"{FOLDS_DIR.as_posix()}/fold-<k>/ (final weights, fold.json, "
                            "history.csv)",
            "histories": {f"fold-{r.fold + 1}": r.history for r in outcome.cv.results},
        },
    }

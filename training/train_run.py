"""One training run: scan, group, split, fit, choose the threshold, test, export and report.

The test split is scored once, at the end, through the exported serving signature (the path
the service and `python -m training evaluate` use), so the reported figures are the ones a
user of the exported model gets. To have the card carry those figures, the model is first
exported to a staging folder inside the run, scored there, then exported for real with the
finished card; the run checks that both exports give the same scores.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from training.architectures import count_flops, count_parameters
from training.baseline import DESCRIPTION as BASELINE_DESCRIPTION
from training.baseline import fit_metadata_baseline
from training.discovery import ClassLayout, DataError, ImageRecord, scan_images
from training.evaluation import DEFAULT_MIN_RECALL, choose_threshold
from training.export import export_model, load_signature
from training.fitting import TrainingConfig, fit_model, preprocess_images
from training.grouping import group_images
from training.model_card import build_card
from training.plots import PLOT_FILES, plot_training_curves
from training.report import (
    PREDICTIONS_FILE,
    data_section,
    evaluation_section,
    grouping_section,
    json_ready,
    library_versions,
    now_utc,
    write_predictions,
    write_report,
)
from training.splitting import (
    SPLITS,
    SplitFractions,
    assign_splits,
    manifest_rows,
    split_counts,
    write_manifest,
)

MANIFEST_FILE = "manifest.csv"
# Both exports of one model must score alike; anything above float32 noise is a bug.
EXPORT_AGREEMENT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class TrainOptions:
    layout: ClassLayout
    out_dir: Path
    run_dir: Path
    name: str
    training: TrainingConfig
    fractions: SplitFractions
    max_distance: int
    drop_label_conflicts: bool
    min_images_per_class: int
    min_recall: float = DEFAULT_MIN_RECALL
    bootstrap_resamples: int = 1000
    command: tuple[str, ...] = ()


def _say(message: str) -> None:
    print(message, flush=True)


@dataclass
class TrainResult:
    version_dir: Path  # the exported SavedModel version
    report_path: Path
    model: keras.Model  # the trained model in memory (best weights restored)


def _indices(records: list[ImageRecord], splits: list[str], name: str) -> list[int]:
    """The split's records in path order: `evaluate` uses the same order, so its bootstrap
    draws the same resamples and reproduces the run's intervals exactly."""
    chosen = [i for i, split in enumerate(splits) if split == name]
    return sorted(chosen, key=lambda i: records[i].path)


def run_training(options: TrainOptions) -> TrainResult:
    """Run everything: returns where the model and the report went, and the model itself."""
    started = time.monotonic()
    run_dir = options.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    layout = options.layout

    _say(f"scanning {layout.data_dir} (positive class: '{layout.positive}')")
    scan = scan_images(layout, options.min_images_per_class, progress=_say)
    for unreadable in scan.unreadable:
        _say(f"  unreadable, skipped: {unreadable.path}: {unreadable.reason}")
    records: list[ImageRecord] = scan.records

    _say(f"grouping near-duplicates (phash distance <= {options.max_distance})")
    grouping = group_images(records, options.max_distance, progress=_say)
    summary = grouping.summary()
    _say(f"  {summary['groups']} groups from {summary['files']} files, largest "
         f"{summary['largest_group']}, {summary['label_conflict_groups']} label-conflict groups")
    excluded = (
        frozenset(c.group for c in grouping.conflicts) if options.drop_label_conflicts
        else frozenset()
    )
    splits = assign_splits(
        records, grouping.groups, options.fractions, options.training.seed, excluded
    )
    rows = manifest_rows(records, grouping.groups, splits)
    fingerprint = write_manifest(rows, run_dir / MANIFEST_FILE)
    counts = split_counts(rows, layout.classes)
    for split in SPLITS:
        entry = counts[split]
        _say(f"  {split}: {entry['images']} images in {entry['groups']} groups "
             + ", ".join(f"{name} {entry[name]}" for name in layout.classes))
        if any(entry[name] == 0 for name in layout.classes):
            raise DataError(
                f"the {split} split has no image of one class; add images or change the split "
                "fractions."
            )

    index = {split: _indices(records, splits, split) for split in SPLITS}
    labels = {s: np.array([records[i].label for i in index[s]], dtype=np.int64) for s in SPLITS}
    images = {s: [records[i].data for i in index[s]] for s in SPLITS}
    paths = {s: [records[i].path for i in index[s]] for s in SPLITS}

    # The shortcut a reader should compare against, fitted and scored on the same split.
    baseline = fit_metadata_baseline(
        [records[i].metadata for i in index["train"]], labels["train"], options.training.seed
    )
    baseline_scores = {
        s: baseline.predict([records[i].metadata for i in index[s]]) for s in SPLITS
    }
    baseline_threshold = choose_threshold(
        labels["validation"], baseline_scores["validation"], options.min_recall
    )

    config = options.training
    preprocess = config.preprocess()
    _say(f"preprocessing {len(images['train']) + len(images['validation'])} train and "
         f"validation images to {preprocess.image_size}x{preprocess.image_size}x"
         f"{preprocess.channels} (crop to brain: {preprocess.crop_to_brain})")
    train_pixels = preprocess_images(images["train"], preprocess)
    val_pixels = preprocess_images(images["validation"], preprocess)

    _say(f"training '{config.architecture}' for up to {config.epochs} epochs")
    fitted = fit_model(
        config, train_pixels, labels["train"], val_pixels, labels["validation"], run_dir
    )
    del train_pixels, val_pixels
    model = fitted.model
    architecture = {
        "name": config.architecture,
        "parameters": count_parameters(model),
        "flops_per_image": count_flops(model),
    }

    _say("scoring validation and test through the exported serving signature")
    staging_root = run_dir / "staging"
    staging = export_model(model, preprocess, {"staging": True}, staging_root, options.name)
    predict = load_signature(staging)
    val_scores = predict(images["validation"])
    test_scores = predict(images["test"])
    threshold = choose_threshold(labels["validation"], val_scores, options.min_recall)
    _say(f"  threshold {threshold.value:.4f} ({threshold.rule})")

    resamples = options.bootstrap_resamples
    seed = config.seed
    test_section = evaluation_section(
        labels["test"], test_scores, threshold.value, "test", layout.classes, run_dir,
        f"{config.architecture}, test split", resamples, seed,
    )
    val_section = evaluation_section(
        labels["validation"], val_scores, threshold.value, "validation", layout.classes, None,
        "", resamples, seed,
    )
    baseline_section = evaluation_section(
        labels["test"], baseline_scores["test"], baseline_threshold.value, "test",
        layout.classes, None, "", resamples, seed,
    )
    test_metrics = test_section["metrics"]

    training_section: dict[str, Any] = {
        **config.to_dict(),
        "class_folders": {"positive": layout.positive, "negative": layout.negative},
        "split": {
            "fractions": list(options.fractions.as_tuple()),
            "seed": config.seed,
            "by": "near-duplicate group, stratified by label",
            "counts": counts,
        },
        "grouping": {"method": summary["method"], "max_distance": options.max_distance},
        "label_conflicts": "dropped" if options.drop_label_conflicts else "kept",
        "class_weight": fitted.class_weight,
        "epochs_run": fitted.epochs_run,
        "best_epoch": fitted.best_epoch,
        "training_seconds": round(fitted.seconds, 1),
    }
    versions = library_versions()
    card = build_card(
        threshold=threshold.value,
        threshold_rule=threshold.rule,
        test_metrics=test_metrics,
        baseline_test_metrics=baseline_section["metrics"],
        data_fingerprint=fingerprint,
        training=training_section,
        architecture=architecture,
        library_versions=versions,
    )
    # NaN (an undefined metric) is not JSON: the card says null instead.
    version_dir = export_model(model, preprocess, json_ready(card), options.out_dir, options.name)
    final_scores = load_signature(version_dir)(images["test"])
    agreement = float(np.max(np.abs(final_scores - test_scores))) if len(test_scores) else 0.0
    if agreement > EXPORT_AGREEMENT_TOLERANCE:
        print(f"warning: the final export differs from the staging one by {agreement:.2e}",
              file=sys.stderr)
    shutil.rmtree(staging_root, ignore_errors=True)
    _say(f"exported {version_dir}")

    plot_training_curves(fitted.history, fitted.best_epoch,
                         run_dir / PLOT_FILES["training_curves"])
    write_predictions(
        run_dir / PREDICTIONS_FILE,
        [(p, "validation", int(y), float(s)) for p, y, s in
         zip(paths["validation"], labels["validation"], val_scores, strict=True)]
        + [(p, "test", int(y), float(s)) for p, y, s in
           zip(paths["test"], labels["test"], test_scores, strict=True)],
        threshold.value,
    )
    report: dict[str, Any] = {
        "kind": "train",
        "created_at": now_utc(),
        "command": list(options.command),
        "model": {
            "exported_to": str(version_dir),
            "name": options.name,
            "version": int(version_dir.name),
            "architecture": architecture,
            "preprocess": preprocess.to_dict(),
            "export_agreement_max_abs_difference": agreement,
        },
        "data": data_section(scan),
        "grouping": grouping_section(grouping, options.drop_label_conflicts),
        "split": {
            "manifest": MANIFEST_FILE,
            "data_fingerprint": fingerprint,
            "fractions": list(options.fractions.as_tuple()),
            "seed": config.seed,
            "counts": counts,
        },
        "training": {
            **training_section,
            "history": fitted.history,
            "history_files": ["history.csv", "history.json"],
            "checkpoint": "checkpoints/best.weights.h5",
        },
        "threshold": {
            "value": threshold.value,
            "rule": threshold.rule,
            "chosen_on": "validation",
            "at_threshold_on_validation": threshold.validation,
        },
        "test": test_section,
        "validation": {
            "note": "used for early stopping and the threshold; not an unbiased estimate",
            **val_section,
        },
        "baseline_metadata_only": {
            "description": BASELINE_DESCRIPTION,
            "threshold": baseline_threshold.value,
            "validation_at_threshold": baseline_threshold.validation,
            **baseline_section,
        },
        "plots": {
            **test_section.get("plots", {}),
            "training_curves": PLOT_FILES["training_curves"],
        },
        "predictions": PREDICTIONS_FILE,
        "library_versions": versions,
        "seconds_total": round(time.monotonic() - started, 1),
    }
    report_path = write_report(report, run_dir)
    _say_summary(test_metrics, baseline_section["metrics"])
    _say(f"report: {report_path}")
    return TrainResult(version_dir=version_dir, report_path=report_path, model=model)


def _say_summary(cnn: dict[str, Any], baseline: dict[str, Any]) -> None:
    _say(f"test split ({cnn['n']} images), CNN vs metadata-only baseline:")
    for name in ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "pr_auc"):
        a, b = cnn[name], baseline[name]
        _say(f"  {name:<12} {_fmt(a)}   baseline {_fmt(b)}")


def _fmt(metric: dict[str, Any]) -> str:
    value, (low, high) = metric["value"], metric["ci95"]
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"

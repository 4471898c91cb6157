"""One training run, read top to bottom: discover, group, split, fit, fit the input gate,
evaluate, export, report.

The model is exported once: to a hidden folder beside the versions, verified (the loaded
signature must give the trained model's outputs), and scored there on validation (which picks
the threshold) and test, through the serving signature the service and `python -m training
evaluate` use, so the card carries the figures a user of the exported model gets. Then the
card is written and the folder renamed into the next version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from model_contract import GATE_OUTPUT_KEY, OUTPUT_KEY, ModelCard, read_card
from training.architectures import count_flops, count_parameters
from training.baseline import DESCRIPTION as BASELINE_DESCRIPTION
from training.baseline import fit_metadata_baseline
from training.discovery import ClassLayout, DataError, ImageRecord, ScanResult, scan_images
from training.evaluation import DEFAULT_MIN_RECALL, ThresholdChoice, choose_threshold
from training.export import (
    StagedExport,
    load_outputs,
    publish,
    stage_export,
    verify_export,
)
from training.fitting import (
    CHECKPOINT_FILE,
    FitResult,
    ResumeError,
    TrainingConfig,
    fit_model,
    load_finished_fit,
)
from training.fitting import preprocess_images as to_pixels
from training.gate_evaluation import GateCheck, check_gate, read_ood_set
from training.grouping import METHOD as GROUPING_METHOD
from training.grouping import Grouping, group_images
from training.input_gate import DEFAULT_TARGET_ACCEPTANCE, FittedGate, fit_input_gate
from training.model_card import build_card
from training.plots import PLOT_FILES, plot_training_curves
from training.publishing import PublishPolicy
from training.report import (
    PREDICTIONS_FILE,
    Plots,
    data_section,
    evaluation_section,
    grouping_section,
    library_versions,
    log_metrics,
    now_utc,
    write_predictions,
    write_report,
)
from training.splitting import (
    SPLITS,
    ManifestRow,
    SplitFractions,
    assign_splits,
    manifest_rows,
    split_counts,
    write_manifest,
)

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.csv"
# The test split's plots a version carries in assets/plots/ (the card's `plots` section names
# them; the service's /model page shows them).
PLOTS_IN_MODEL = ("roc", "pr", "confusion_matrix", "calibration")


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
    # The input gate's share of validation slices that must pass; None: export no gate.
    gate_acceptance: float | None = DEFAULT_TARGET_ACCEPTANCE
    ood_dir: Path | None = None  # an OOD set to measure the gate on (never to fit it)
    resume_fit: Path | None = None  # an earlier run folder whose finished fit to reuse
    publish: PublishPolicy = field(default_factory=PublishPolicy)
    quick_sample: int | None = None  # --quick: train on this many slices drawn at random


@dataclass
class TrainResult:
    version_dir: Path | None  # the exported SavedModel version (None: publishing refused)
    report_path: Path
    model: keras.Model  # the trained model in memory (best weights restored)
    refused: str | None = None  # why the model was not published


@dataclass(frozen=True)
class SplitData:
    """The split's records, in path order, as the steps after it need them."""

    rows: list[ManifestRow]
    fingerprint: str  # SHA-256 of the manifest
    counts: dict[str, dict[str, int]]
    records: dict[str, list[ImageRecord]]

    def labels(self, split: str) -> np.ndarray:
        return np.array([r.label for r in self.records[split]], dtype=np.int64)

    def images(self, split: str) -> list[bytes]:
        return [r.data for r in self.records[split]]


@dataclass(frozen=True)
class Evaluation:
    threshold: ThresholdChoice
    scores: dict[str, np.ndarray]  # validation and test, through the exported signature
    sections: dict[str, dict[str, Any]]  # test, validation, baseline
    baseline_threshold: ThresholdChoice
    export_difference: float  # exported signature vs the model in memory, largest
    gate_scores: dict[str, np.ndarray]  # validation and test brain_mri_score; {} without gate


@dataclass(frozen=True)
class Outcome:
    """Everything a run produced, for its report."""

    scan: ScanResult
    grouping: Grouping
    data: SplitData
    fitted: FitResult
    evaluation: Evaluation
    version_dir: Path | None  # None when the publishing policy refused the model
    card: ModelCard
    gate: tuple[FittedGate, GateCheck] | None
    refused: str | None = None


def run_training(options: TrainOptions) -> TrainResult:
    """Run everything: returns where the model and the report went, and the model itself."""
    started = time.monotonic()
    options.run_dir.mkdir(parents=True, exist_ok=True)
    scan = discover(options)
    grouping = group(scan.records, options)
    data = split(scan.records, grouping, options)
    fitted = fit(data, options)
    gate = fit_gate(fitted, data, options)
    staged = stage_export(fitted.model, options.training.preprocess(), options.out_dir,
                          options.name, gate)
    try:
        evaluation = evaluate(staged, fitted.model, data, options)
        checked = None if gate is None else (gate, check_input_gate(staged, evaluation, data,
                                                                    options))
        version_dir, card, refused = export(staged, fitted, data, evaluation, options, checked)
    finally:
        staged.discard()  # a no-op once published
    report_path = report(
        Outcome(scan, grouping, data, fitted, evaluation, version_dir, card, checked, refused),
        options, seconds=time.monotonic() - started,
    )
    return TrainResult(version_dir, report_path, fitted.model, refused)


def discover(options: TrainOptions) -> ScanResult:
    """Every readable image of both class folders (unreadable ones listed with the reason);
    with --quick, a random sample of them."""
    scan = scan_images(options.layout, options.min_images_per_class)
    size = options.quick_sample
    if size is None or size >= len(scan.records):
        return scan
    sample = random.Random(options.training.seed).sample(scan.records, size)
    logger.info("quick run: %d of %d slices drawn at random", size, len(scan.records))
    return dataclasses.replace(scan, records=sorted(sample, key=lambda r: r.path))


def group(records: list[ImageRecord], options: TrainOptions) -> Grouping:
    logger.info("grouping near-duplicates (phash distance <= %d)", options.max_distance)
    grouping = group_images(records, options.max_distance)
    summary = grouping.summary()
    logger.info("  %s groups from %s files, largest %s, %s label-conflict groups",
                summary["groups"], summary["files"], summary["largest_group"],
                summary["label_conflict_groups"])
    return grouping


def split(records: list[ImageRecord], grouping: Grouping, options: TrainOptions) -> SplitData:
    """Whole groups to train, validation and test; the manifest is written to the run folder.
    Each split's records are in path order: `evaluate` uses the same order, so its bootstrap
    draws the same resamples and reproduces the run's intervals exactly."""
    excluded = (
        frozenset(c.group for c in grouping.conflicts) if options.drop_label_conflicts
        else frozenset()
    )
    seed = options.training.seed
    splits = assign_splits(records, grouping.groups, options.fractions, seed, excluded)
    rows = manifest_rows(records, grouping.groups, splits)
    fingerprint = write_manifest(rows, options.run_dir / MANIFEST_FILE)
    classes = options.layout.classes
    counts = split_counts(rows, classes)
    for name in SPLITS:
        entry = counts[name]
        logger.info("  %s: %d images in %d groups %s", name, entry["images"], entry["groups"],
                    ", ".join(f"{c} {entry[c]}" for c in classes))
        if any(entry[c] == 0 for c in classes):
            raise DataError(
                f"the {name} split has no image of one class; add images or change the split "
                "fractions."
            )
    chosen = {
        name: sorted((r for r, s in zip(records, splits, strict=True) if s == name),
                     key=lambda r: r.path)
        for name in SPLITS
    }
    return SplitData(rows, fingerprint, counts, chosen)


def fit(data: SplitData, options: TrainOptions) -> FitResult:
    """Preprocess train and validation once (the serving graph's function), then train; or,
    with `resume_fit`, load the finished fit of an earlier run made on the same split."""
    config = options.training
    if options.resume_fit is not None:
        earlier = options.resume_fit / MANIFEST_FILE
        same_split = earlier.is_file() and (
            hashlib.sha256(earlier.read_bytes()).hexdigest() == data.fingerprint)
        if not same_split:
            raise ResumeError(f"{options.resume_fit} was not split like this run "
                              f"(its {MANIFEST_FILE} differs or is missing)")
        return load_finished_fit(config, options.resume_fit, data.labels("train"))
    preprocess = config.preprocess()
    logger.info("preprocessing %d train and validation images to %dx%dx%d (crop to brain: %s)",
                len(data.records["train"]) + len(data.records["validation"]),
                preprocess.image_size, preprocess.image_size, preprocess.channels,
                preprocess.crop_to_brain)
    train_pixels = to_pixels(data.images("train"), preprocess)
    val_pixels = to_pixels(data.images("validation"), preprocess)
    logger.info("training '%s' for up to %d epochs", config.architecture, config.epochs)
    return fit_model(config, train_pixels, data.labels("train"), val_pixels,
                     data.labels("validation"), options.run_dir)


def fit_gate(fitted: FitResult, data: SplitData, options: TrainOptions) -> FittedGate | None:
    """The input gate, fitted on the training split's slices only (None when disabled)."""
    if options.gate_acceptance is None:
        return None
    return fit_input_gate(fitted.model, options.training.preprocess(), data.images("train"),
                          data.labels("train"))


def evaluate(
    staged: StagedExport, model: keras.Model, data: SplitData, options: TrainOptions
) -> Evaluation:
    """Verify the staged export, then score validation (threshold) and test through it, with
    the metadata-only baseline fitted and scored on the same split beside it."""
    outputs = load_outputs(staged.folder)
    difference = verify_export(lambda images: outputs(images)[OUTPUT_KEY], model,
                               staged.preprocess, data.images("validation"))
    logger.info("scoring validation and test through the exported serving signature")
    answers = {name: outputs(data.images(name)) for name in ("validation", "test")}
    scores = {name: answer[OUTPUT_KEY] for name, answer in answers.items()}
    gate_scores = {name: answer[GATE_OUTPUT_KEY] for name, answer in answers.items()
                   if GATE_OUTPUT_KEY in answer}
    threshold = choose_threshold(data.labels("validation"), scores["validation"],
                                 options.min_recall)
    logger.info("  threshold %.4f (%s)", threshold.value, threshold.rule)
    baseline_scores, baseline_threshold = _baseline(data, options)
    config = options.training
    resamples, seed = options.bootstrap_resamples, config.seed
    plots = Plots(options.run_dir, options.layout.classes, f"{config.architecture}, test split")
    sections = {
        "test": evaluation_section(data.labels("test"), scores["test"], threshold=threshold.value,
                                   split="test", resamples=resamples, seed=seed, plots=plots),
        "validation": evaluation_section(data.labels("validation"), scores["validation"],
                                         threshold=threshold.value, split="validation",
                                         resamples=resamples, seed=seed),
        "baseline": evaluation_section(data.labels("test"), baseline_scores,
                                       threshold=baseline_threshold.value, split="test",
                                       resamples=resamples, seed=seed),
    }
    return Evaluation(threshold, scores, sections, baseline_threshold, difference, gate_scores)


def check_input_gate(
    staged: StagedExport, evaluation: Evaluation, data: SplitData, options: TrainOptions
) -> GateCheck:
    """The gate's threshold from the staged export's validation scores; its acceptance on
    validation and test and, with `ood_dir`, its refusal per kind of image."""
    assert options.gate_acceptance is not None
    ood = None
    if options.ood_dir is not None:
        outputs = load_outputs(staged.folder)
        ood = (read_ood_set(options.ood_dir), lambda images: outputs(images)[GATE_OUTPUT_KEY])
    paths = {name: [r.path for r in data.records[name]] for name in evaluation.gate_scores}
    return check_gate(evaluation.gate_scores, paths, options.gate_acceptance, ood)


def _baseline(data: SplitData, options: TrainOptions) -> tuple[np.ndarray, ThresholdChoice]:
    """The shortcut a reader should compare against: test scores and its own threshold."""
    metadata = {name: [r.metadata for r in data.records[name]] for name in SPLITS}
    baseline = fit_metadata_baseline(metadata["train"], data.labels("train"),
                                     options.training.seed)
    threshold = choose_threshold(data.labels("validation"),
                                 baseline.predict(metadata["validation"]), options.min_recall)
    return baseline.predict(metadata["test"]), threshold


def export(
    staged: StagedExport,
    fitted: FitResult,
    data: SplitData,
    evaluation: Evaluation,
    options: TrainOptions,
    gate: tuple[FittedGate, GateCheck] | None = None,
) -> tuple[Path | None, ModelCard, str | None]:
    """Write the card into the verified, scored export and publish it as the next version,
    unless the publishing policy refuses it: then no version, and the reason."""
    card = build_card(
        threshold=evaluation.threshold.value,
        threshold_rule=evaluation.threshold.rule,
        test_metrics=evaluation.sections["test"]["metrics"],
        baseline_test_metrics=evaluation.sections["baseline"]["metrics"],
        data_fingerprint=data.fingerprint,
        training=training_section(fitted, data, options),
        architecture=architecture_section(fitted.model, options.training),
        library_versions=library_versions(),
    )
    if gate is not None:
        card = dataclasses.replace(card, input_gate=gate[1].card_section(gate[0]))
    plots = ship_plots(staged, options.run_dir)
    if plots:
        card = dataclasses.replace(card, extra={**card.extra, "plots": plots})
    refused = options.publish.refusal(evaluation.sections["test"]["metrics"],
                                      evaluation.sections["baseline"]["metrics"])
    if refused is not None:
        logger.warning("%s", refused)
        return None, card, refused
    version_dir = publish(staged, card)
    logger.info("exported %s", version_dir)
    return version_dir, read_card(version_dir), None


def ship_plots(staged: StagedExport, run_dir: Path) -> dict[str, str]:
    """Copy the test split's plots into the staged version's assets/plots/; their names and
    paths (relative to the version folder) for the card."""
    target = staged.folder / "assets" / "plots"
    shipped: dict[str, str] = {}
    for name in PLOTS_IN_MODEL:
        source = run_dir / PLOT_FILES[name]
        if source.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / source.name)
            shipped[name] = f"assets/plots/{source.name}"
    return shipped


def architecture_section(model: keras.Model, config: TrainingConfig) -> dict[str, Any]:
    return {
        "name": config.architecture,
        "parameters": count_parameters(model),
        "flops_per_image": count_flops(model),
    }


def training_section(fitted: FitResult, data: SplitData, options: TrainOptions) -> dict[str, Any]:
    """The training configuration and what the fit did, for the card and the report."""
    config, layout = options.training, options.layout
    return {
        **config.to_dict(),
        "class_folders": {"positive": layout.positive, "negative": layout.negative},
        "split": {
            "fractions": list(options.fractions.as_tuple()),
            "seed": config.seed,
            "by": "near-duplicate group, stratified by label",
            "counts": data.counts,
        },
        "grouping": {"method": GROUPING_METHOD, "max_distance": options.max_distance},
        "label_conflicts": "dropped" if options.drop_label_conflicts else "kept",
        "class_weight": fitted.class_weight,
        "epochs_run": fitted.epochs_run,
        "best_epoch": fitted.best_epoch,
        "training_seconds": round(fitted.seconds, 1),
        "fit_resumed_from": None if options.resume_fit is None else str(options.resume_fit),
    }


def report(outcome: Outcome, options: TrainOptions, *, seconds: float) -> Path:
    """Training curves, per-image predictions and report.json; the headline figures logged."""
    run_dir, fitted, evaluation = options.run_dir, outcome.fitted, outcome.evaluation
    plot_training_curves(fitted.history, fitted.best_epoch,
                         run_dir / PLOT_FILES["training_curves"])
    write_predictions(
        run_dir / PREDICTIONS_FILE,
        [(record.path, name, record.label, float(score))
         for name in ("validation", "test")
         for record, score in zip(outcome.data.records[name], evaluation.scores[name],
                                  strict=True)],
        evaluation.threshold.value,
    )
    report_path = write_report({
        "kind": "train",
        "created_at": now_utc(),
        "command": list(options.command),
        **_run_sections(outcome, options),
        **_result_sections(evaluation),
        "input_gate": None if outcome.gate is None else outcome.gate[1].report_section(
            outcome.gate[0]),
        "predictions": PREDICTIONS_FILE,
        "library_versions": outcome.card.library_versions,
        "seconds_total": round(seconds, 1),
    }, run_dir)
    log_metrics("test split", evaluation.sections["test"]["metrics"],
                evaluation.sections["baseline"]["metrics"])
    logger.info("report: %s", report_path)
    return report_path


def _run_sections(outcome: Outcome, options: TrainOptions) -> dict[str, Any]:
    """What was trained on what: the model, the data, the grouping, the split, the fit."""
    card, data = outcome.card, outcome.data
    return {
        "model": {
            "published": outcome.version_dir is not None,
            "not_published_because": outcome.refused,
            "exported_to": None if outcome.version_dir is None else str(outcome.version_dir),
            "name": card.name if outcome.version_dir is not None else options.name,
            "version": card.version if outcome.version_dir is not None else None,
            "architecture": card.architecture,
            "preprocess": options.training.preprocess().to_dict(),
            "export_max_abs_difference": outcome.evaluation.export_difference,
        },
        "data": data_section(outcome.scan),
        "grouping": grouping_section(outcome.grouping, options.drop_label_conflicts),
        "split": {
            "manifest": MANIFEST_FILE,
            "data_fingerprint": data.fingerprint,
            "fractions": list(options.fractions.as_tuple()),
            "seed": options.training.seed,
            "counts": data.counts,
        },
        "training": {
            **(card.training or {}),
            "history": outcome.fitted.history,
            "history_files": ["history.csv", "history.json"],
            "checkpoint": CHECKPOINT_FILE.as_posix(),
        },
    }


def _result_sections(evaluation: Evaluation) -> dict[str, Any]:
    """The threshold, the test and validation figures, the baseline's, the plots."""
    threshold, sections = evaluation.threshold, evaluation.sections
    return {
        "threshold": {
            "value": threshold.value,
            "rule": threshold.rule,
            "chosen_on": "validation",
            "at_threshold_on_validation": threshold.validation,
        },
        "test": sections["test"],
        "validation": {
            "note": "used for early stopping and the threshold; not an unbiased estimate",
            **sections["validation"],
        },
        "baseline_metadata_only": {
            "description": BASELINE_DESCRIPTION,
            "threshold": evaluation.baseline_threshold.value,
            "validation_at_threshold": evaluation.baseline_threshold.validation,
            **sections["baseline"],
        },
        "plots": {
            **sections["test"].get("plots", {}),
            "training_curves": PLOT_FILES["training_curves"],
        },
    }

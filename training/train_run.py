"""One training run, read top to bottom: discover, group, split, cross-validate, build the
ensemble, evaluate, export, report.

The development slices (train + validation splits) are cut into K folds by near-duplicate
group; one model per fold is trained on the others (cross_validation.py, resumable). The fold
models are averaged in one graph with the calibration fitted on their out-of-fold predictions
(ensemble.py, calibration.py), and the named operating points are chosen on those same
predictions (operating_points.py). The ensemble is exported once: to a hidden folder beside
the versions, verified against the in-memory model, and scored there on test through the
serving signature. Then the card is written and the folder renamed into the next version,
unless the publishing policy refuses it (publishing.py).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from model_contract import GATE_OUTPUT_KEY, OUTPUT_KEY, ModelCard, OperatingPoints, read_card
from training.architectures import count_flops, count_parameters
from training.baseline import fit_metadata_baseline
from training.calibration import (
    RELIABILITY_FILE,
    calibrated,
    calibration_section,
    fit_calibration,
    plot_reliability,
)
from training.cross_validation import CrossValidation, cross_validate
from training.discovery import ClassLayout, DataError, ImageRecord, ScanResult, scan_images
from training.ensemble import build_ensemble, ensemble_members, logit, sigmoid
from training.ensemble_gate import check_ensemble_gate, fit_ensemble_gate
from training.evaluation import DEFAULT_MIN_RECALL, ThresholdChoice, choose_threshold
from training.export import (
    OutputsFn,
    StagedExport,
    load_outputs,
    publish,
    stage_export,
    verify_export,
)
from training.fitting import TrainingConfig
from training.folds import DEFAULT_FOLDS, fold_counts
from training.gate_evaluation import GateCheck
from training.grouping import METHOD as GROUPING_METHOD
from training.grouping import Grouping, group_images
from training.input_gate import DEFAULT_TARGET_ACCEPTANCE, Gate
from training.model_card import build_card
from training.operating_points import build_operating_points, choose_points
from training.plots import PLOT_FILES
from training.publishing import PublishPolicy
from training.report import Plots, evaluation_section, library_versions
from training.splitting import (
    SPLITS,
    ManifestRow,
    SplitFractions,
    assign_splits,
    manifest_rows,
    split_counts,
    write_manifest,
)
from training.train_report import MANIFEST_FILE, report

logger = logging.getLogger(__name__)
# The test split's plots a version carries in assets/plots/ (with the reliability diagram).
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
    folds: int = DEFAULT_FOLDS
    flip_tta: bool = False
    # The input gate's share of held-out slices that must pass; None: export no gate.
    gate_acceptance: float | None = DEFAULT_TARGET_ACCEPTANCE
    ood_dir: Path | None = None  # an OOD set to measure the gate on (never to fit it)
    publish: PublishPolicy = field(default_factory=PublishPolicy)
    quick_sample: int | None = None  # --quick: train on this many slices drawn at random


@dataclass
class TrainResult:
    version_dir: Path | None  # the exported SavedModel version (None: publishing refused)
    report_path: Path
    model: keras.Model  # the ensemble in memory
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

    def development(self) -> list[ImageRecord]:
        """Train and validation slices: what cross-validation folds."""
        return sorted(self.records["train"] + self.records["validation"], key=lambda r: r.path)


@dataclass(frozen=True)
class Outcome:
    """Everything a run produced, for its report."""

    scan: ScanResult
    grouping: Grouping
    data: SplitData
    cv: CrossValidation
    ensemble: Ensemble
    evaluation: Evaluation
    version_dir: Path | None
    card: ModelCard
    refused: str | None
    gate: tuple[Gate, GateCheck] | None


def run_training(options: TrainOptions) -> TrainResult:
    """Run everything: returns where the model and the report went, and the model itself."""
    started = time.monotonic()
    options.run_dir.mkdir(parents=True, exist_ok=True)
    scan = discover(options)
    grouping = group(scan.records, options)
    data = split(scan.records, grouping, options)
    cv = cross_validate(data.development(), {r.path: r.group for r in data.rows},
                        options.training, options.folds, options.run_dir)
    ensemble = build(cv, options)
    preprocess = options.training.preprocess()
    gate = None if options.gate_acceptance is None else fit_ensemble_gate(
        ensemble.model, preprocess, cv, options.gate_acceptance)
    staged = stage_export(ensemble.model, preprocess, options.out_dir, options.name, gate)
    try:
        evaluation = evaluate(staged, ensemble, cv, data, options)
        checked = None if gate is None or options.gate_acceptance is None else (
            gate, check_ensemble_gate(gate, evaluation.outputs, cv,
                                      [r.path for r in data.records["test"]],
                                      evaluation.test_gate_scores, options.gate_acceptance,
                                      options.ood_dir))
        card = make_card(ensemble, cv, data, evaluation, options, checked)
        card = with_plots(card, staged, options.run_dir)
        refused = options.publish.refusal(evaluation.sections["test"]["metrics"],
                                          evaluation.sections["baseline"]["metrics"])
        version_dir = None if refused else publish(staged, card)
        if version_dir is not None:
            logger.info("exported %s", version_dir)
            card = read_card(version_dir)
    finally:
        staged.discard()  # a no-op once published
    report_path = report(
        Outcome(scan, grouping, data, cv, ensemble, evaluation, version_dir, card, refused,
                checked),
        options, seconds=time.monotonic() - started,
    )
    return TrainResult(version_dir, report_path, ensemble.model, refused)


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


@dataclass(frozen=True)
class Ensemble:
    model: keras.Model  # pixels -> calibrated mean P(tumor)
    temperature: float
    intercept: float
    flip_tta: bool
    oof_logits: np.ndarray  # mean member logit per development slice (flip TTA as exported)

    @property
    def oof_scores(self) -> np.ndarray:
        """Calibrated out-of-fold P(tumor): what the exported model would say of each slice
        had it been trained without that slice's fold."""
        return sigmoid(calibrated(self.oof_logits, self.temperature, self.intercept))


@dataclass(frozen=True)
class Evaluation:
    test_scores: np.ndarray  # through the exported signature
    operating_points: OperatingPoints
    sections: dict[str, dict[str, Any]]  # test (default operating point), out_of_fold, baseline
    calibration: dict[str, Any]
    baseline_threshold: ThresholdChoice
    export_difference: float  # exported signature vs the model in memory, largest
    outputs: OutputsFn  # the staged export's serving signature, every output
    test_gate_scores: np.ndarray  # empty without a gate


def build(cv: CrossValidation, options: TrainOptions) -> Ensemble:
    """Fit the calibration on the out-of-fold logits and put the fold models in one graph."""
    oof_logits = cv.oof_logits(options.flip_tta)
    temperature, intercept = fit_calibration(cv.labels, oof_logits)
    logger.info("calibration T %.3f, b %.3f fitted on %d out-of-fold predictions (%d members%s)",
                temperature, intercept, len(oof_logits), len(cv.results),
                ", flip TTA" if options.flip_tta else "")
    model = build_ensemble([r.model for r in cv.results], temperature, options.flip_tta,
                           intercept)
    return Ensemble(model, temperature, intercept, options.flip_tta, oof_logits)


def evaluate(staged: StagedExport, ensemble: Ensemble, cv: CrossValidation, data: SplitData,
             options: TrainOptions) -> Evaluation:
    """Verify the staged export and score test through it; choose the operating points on the
    out-of-fold predictions; the metadata-only baseline beside it on the same test split."""
    outputs = load_outputs(staged.folder)
    difference = verify_export(lambda images: outputs(images)[OUTPUT_KEY], ensemble.model,
                               staged.preprocess, data.images("test"))
    logger.info("scoring the test split through the exported serving signature")
    answer = outputs(data.images("test"))
    test_scores = answer[OUTPUT_KEY]
    test_labels = data.labels("test")
    resamples, seed = options.bootstrap_resamples, options.training.seed
    chosen_on = (f"calibrated out-of-fold predictions of the {len(cv.records)} development "
                 f"slices ({options.folds} folds by near-duplicate group)")
    points = build_operating_points(
        choose_points(cv.labels, ensemble.oof_scores, options.min_recall), chosen_on,
        test_labels, test_scores, resamples=resamples, seed=seed,
    )
    threshold = points.points[points.default].threshold
    logger.info("operating points: %s", ", ".join(
        f"{name} {point.threshold:.4f}" for name, point in points.points.items()))
    baseline_scores, baseline_threshold = _baseline(data, options)
    plots = Plots(options.run_dir, options.layout.classes, "ensemble, test split")
    sections = {
        "test": evaluation_section(test_labels, test_scores, threshold=threshold, split="test",
                                   resamples=resamples, seed=seed, plots=plots),
        "out_of_fold": evaluation_section(cv.labels, ensemble.oof_scores, threshold=threshold,
                                          split="out_of_fold", resamples=resamples, seed=seed),
        "baseline": evaluation_section(test_labels, baseline_scores,
                                       threshold=baseline_threshold.value, split="test",
                                       resamples=resamples, seed=seed),
    }
    calibration = _calibration(ensemble, cv, test_labels, test_scores, options.run_dir)
    return Evaluation(test_scores, points, sections, calibration, baseline_threshold, difference,
                      outputs, answer.get(GATE_OUTPUT_KEY, np.zeros(0, np.float32)))


def _calibration(ensemble: Ensemble, cv: CrossValidation, test_labels: np.ndarray,
                 test_scores: np.ndarray, run_dir: Path) -> dict[str, Any]:
    """ECE before and after calibration, out-of-fold and on test, and the figure."""
    t, b = ensemble.temperature, ensemble.intercept
    test_logits = t * (logit(test_scores) - b)  # undo the graph's calibration: the mean logit
    plot_reliability({
        "out-of-fold (development)": (cv.labels, sigmoid(ensemble.oof_logits),
                                      ensemble.oof_scores),
        "test split": (test_labels, sigmoid(test_logits), test_scores),
    }, f"T = {t:.2f}, b = {b:.2f}", run_dir / RELIABILITY_FILE)
    return {
        "method": "Platt scaling of the mean member logit, sigmoid(z / T + b), fitted on the "
                  "out-of-fold predictions (log-loss)",
        "temperature": t,
        "intercept": b,
        "out_of_fold": calibration_section(cv.labels, ensemble.oof_logits, t, b, "out_of_fold"),
        "test": calibration_section(test_labels, test_logits, t, b, "test"),
        "plot": RELIABILITY_FILE,
    }


def _baseline(data: SplitData, options: TrainOptions) -> tuple[np.ndarray, ThresholdChoice]:
    """The shortcut a reader should compare against: test scores and its own threshold."""
    metadata = {name: [r.metadata for r in data.records[name]] for name in SPLITS}
    baseline = fit_metadata_baseline(metadata["train"], data.labels("train"),
                                     options.training.seed)
    threshold = choose_threshold(data.labels("validation"),
                                 baseline.predict(metadata["validation"]), options.min_recall)
    return baseline.predict(metadata["test"]), threshold


def make_card(ensemble: Ensemble, cv: CrossValidation, data: SplitData, evaluation: Evaluation,
              options: TrainOptions,
              gate: tuple[Gate, GateCheck] | None = None) -> ModelCard:
    """The card of the ensemble: its default operating point's threshold is `threshold`."""
    points = evaluation.operating_points
    default = points.points[points.default]
    card = build_card(
        threshold=default.threshold,
        threshold_rule=f"operating point '{points.default}': {default.rule}",
        test_metrics=evaluation.sections["test"]["metrics"],
        baseline_test_metrics=evaluation.sections["baseline"]["metrics"],
        data_fingerprint=data.fingerprint,
        training=training_section(ensemble, cv, data, options),
        architecture=architecture_section(ensemble, options),
        library_versions=library_versions(),
    )
    card = dataclasses.replace(card, operating_points=points)
    if gate is not None:
        card = dataclasses.replace(card, input_gate=gate[1].card_section(gate[0]))
    return card


def with_plots(card: ModelCard, staged: StagedExport, run_dir: Path) -> ModelCard:
    """Copy the test split's plots and the reliability diagram into the staged version's
    assets/plots/ and name them in the card (the service's /model page shows them)."""
    target = staged.folder / "assets" / "plots"
    shipped: dict[str, str] = {}
    sources = {name: run_dir / PLOT_FILES[name] for name in PLOTS_IN_MODEL}
    sources["reliability"] = run_dir / RELIABILITY_FILE
    for name, source in sources.items():
        if source.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / source.name)
            shipped[name] = f"assets/plots/{source.name}"
    if not shipped:
        return card
    return dataclasses.replace(card, extra={**card.extra, "plots": shipped})


def architecture_section(ensemble: Ensemble, options: TrainOptions) -> dict[str, Any]:
    members = ensemble_members(ensemble.model)
    views = 2 if ensemble.flip_tta else 1
    return {
        "name": f"ensemble of {len(members)} {options.training.architecture} networks",
        "member": options.training.architecture,
        "members": len(members),
        "flip_tta": ensemble.flip_tta,
        "parameters": count_parameters(ensemble.model),
        "flops_per_image": sum(count_flops(m) for m in members) * views,
        "calibration": {"method": "Platt scaling of the mean logit: sigmoid(z / T + b)",
                        "temperature": ensemble.temperature, "intercept": ensemble.intercept},
    }


def training_section(ensemble: Ensemble, cv: CrossValidation, data: SplitData,
                     options: TrainOptions) -> dict[str, Any]:
    """The training configuration and what the folds did, for the card and the report."""
    config, layout = options.training, options.layout
    values = config.to_dict()
    values["early_stopping"] = "none: fixed epochs, the last weights kept"
    return {
        **values,
        "class_folders": {"positive": layout.positive, "negative": layout.negative},
        "split": {
            "fractions": list(options.fractions.as_tuple()),
            "seed": config.seed,
            "by": "near-duplicate group, stratified by label",
            "counts": data.counts,
        },
        "cross_validation": {
            "folds": options.folds,
            "on": "train + validation splits (the development slices); test untouched",
            "by": "near-duplicate group, stratified by label (StratifiedGroupKFold)",
            "held_out": fold_counts(cv.labels, cv.folds, options.folds),
            "fold_seconds": [round(r.seconds, 1) for r in cv.results],
        },
        "grouping": {"method": GROUPING_METHOD, "max_distance": options.max_distance},
        "label_conflicts": "dropped" if options.drop_label_conflicts else "kept",
        "quick_sample": options.quick_sample,
        "training_seconds": round(cv.seconds, 1),
    }

"""Scoring an exported model on a labelled folder, through its serving signature.

The images go through `canonical_bytes` and the exported `serving_default` signature, exactly
as in the service; the decision threshold comes from the model card. With a split manifest
(the one a training run saved) only that split's files are scored, and the metadata-only
baseline is refitted on the manifest's train split so it can be reported beside the model.
A model with an input gate also gets the gate's acceptance on the scored images at the card's
threshold and, with `--ood DIR`, its refusal per kind of image in that folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_contract import GATE_OUTPUT_KEY, OUTPUT_KEY, ModelCard, read_card
from training.baseline import DESCRIPTION as BASELINE_DESCRIPTION
from training.baseline import fit_metadata_baseline
from training.discovery import ClassLayout, DataError, ImageRecord, ScanResult, scan_images
from training.evaluation import DEFAULT_MIN_RECALL, choose_threshold
from training.export import OutputsFn, load_outputs
from training.gate_evaluation import evaluate_ood, log_ood, read_ood_set
from training.input_gate import acceptance_rate
from training.reencoding import REENCODE_SIZE, reencode_png256
from training.report import (
    PREDICTIONS_FILE,
    Plots,
    data_section,
    evaluation_section,
    library_versions,
    log_metrics,
    now_utc,
    write_predictions,
    write_report,
)
from training.splitting import ManifestRow, read_manifest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateOptions:
    version_dir: Path
    layout: ClassLayout
    report_dir: Path
    manifest: Path | None = None
    split: str = "test"
    reencode_png256: bool = False
    min_images_per_class: int = 1
    bootstrap_resamples: int = 1000
    bootstrap_seed: int = 0
    command: tuple[str, ...] = ()
    ood_dir: Path | None = None


@dataclass(frozen=True)
class Selection:
    """The images to score (in path order) and, with a manifest, every split's records."""

    name: str  # the split's name, or "all"
    records: list[ImageRecord]
    by_split: dict[str, list[ImageRecord]]
    description: dict[str, Any]

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], dtype=np.int64)


def run_evaluation(options: EvaluateOptions) -> Path:
    """Score the model and write report.json and the plots; returns the report's path."""
    started = time.monotonic()
    card = read_card(options.version_dir)
    scan = discover(options)
    selection = select(scan, options)
    outputs = load_outputs(options.version_dir)
    answers = score(selection, card, outputs, options)
    scores = answers[OUTPUT_KEY]
    section = evaluate(selection, scores, card, options)
    baseline = evaluate_baseline(selection, options)
    gate = evaluate_gate(selection, answers, card, outputs, options)
    return report(card, scan, selection, scores, section, baseline, options,
                  seconds=time.monotonic() - started, gate=gate)


def discover(options: EvaluateOptions) -> ScanResult:
    """Every readable image of both class folders (unreadable ones listed with the reason)."""
    return scan_images(options.layout, options.min_images_per_class)


def select(scan: ScanResult, options: EvaluateOptions) -> Selection:
    """The whole folder, or with a manifest only its `--split` files."""
    if options.manifest is None:
        records = sorted(scan.records, key=lambda r: r.path)
        selection = Selection("all", records, {}, {"split": "all files in the folder"})
    else:
        by_split, info = _select(scan.records, read_manifest(options.manifest), options.split)
        info["manifest"] = str(options.manifest)
        selection = Selection(options.split, by_split[options.split], by_split, info)
    if len(set(selection.labels.tolist())) < 2:
        raise DataError("the evaluated images hold one class only; both are needed.")
    return selection


def score(
    selection: Selection, card: ModelCard, outputs: OutputsFn, options: EvaluateOptions
) -> dict[str, np.ndarray]:
    """P(tumor) (and the gate's score) per image through the exported serving signature
    (re-encoded if asked)."""
    images = [r.data for r in selection.records]
    if options.reencode_png256:
        logger.info("re-encoding %d images to %dx%d greyscale PNG", len(images), REENCODE_SIZE,
                    REENCODE_SIZE)
        images = [reencode_png256(data) for data in images]
    logger.info("scoring %d images with %s (threshold %.4f)", len(images), options.version_dir,
                card.threshold)
    return outputs(images)


def evaluate_gate(
    selection: Selection,
    answers: dict[str, np.ndarray],
    card: ModelCard,
    outputs: OutputsFn,
    options: EvaluateOptions,
) -> dict[str, Any] | None:
    """The gate's acceptance on the scored images and, with `ood_dir`, its refusal per kind,
    at the card's gate threshold. None when the model has no gate."""
    gate = card.input_gate
    if gate is None or GATE_OUTPUT_KEY not in answers:
        if options.ood_dir is not None:
            logger.warning("the model has no input gate: --ood is ignored")
        return None
    scores = answers[GATE_OUTPUT_KEY]
    refused = [r.path for r, s in zip(selection.records, scores, strict=True)
               if s < gate.threshold]
    section: dict[str, Any] = {
        "threshold": gate.threshold, "method": gate.method, "split": selection.name,
        "acceptance": round(acceptance_rate(scores, gate.threshold), 4), "n": len(scores),
        "refused_real_slices": refused, "ood": None,
    }
    logger.info("input gate on %s: accepted %.4f of %d (threshold %.4f)", selection.name,
                section["acceptance"], len(scores), gate.threshold)
    if options.ood_dir is not None:
        section["ood_dir"] = str(options.ood_dir)
        section["ood"] = evaluate_ood(read_ood_set(options.ood_dir),
                                      lambda images: outputs(images)[GATE_OUTPUT_KEY],
                                      gate.threshold)
        log_ood(section["ood"])
    return section


def evaluate(
    selection: Selection, scores: np.ndarray, card: ModelCard, options: EvaluateOptions
) -> dict[str, Any]:
    """Metrics with bootstrap intervals at the card's threshold, and the plots."""
    title = f"{card.name} v{card.version}, {selection.name}"
    if options.reencode_png256:
        title += ", re-encoded"
    return evaluation_section(
        selection.labels, scores, threshold=card.threshold, split=selection.name,
        resamples=options.bootstrap_resamples, seed=options.bootstrap_seed,
        plots=Plots(options.report_dir, options.layout.classes, title),
    )


def evaluate_baseline(selection: Selection, options: EvaluateOptions) -> dict[str, Any]:
    """The metadata-only baseline refitted on the manifest's train split, scored beside."""
    train, val = selection.by_split.get("train"), selection.by_split.get("validation")
    if not train or not val:
        return {
            "skipped": "needs --split-manifest with train and validation files in the data folder"
        }
    seed = options.bootstrap_seed
    model = fit_metadata_baseline(
        [r.metadata for r in train], np.array([r.label for r in train]), seed
    )
    choice = choose_threshold(
        np.array([r.label for r in val]), model.predict([r.metadata for r in val]),
        DEFAULT_MIN_RECALL,
    )
    # The baseline reads the stored files' metadata, never the re-encoded images.
    return {
        "description": BASELINE_DESCRIPTION,
        "input": "the stored files' metadata (never re-encoded)",
        "threshold": choice.value,
        **evaluation_section(
            selection.labels, model.predict([r.metadata for r in selection.records]),
            threshold=choice.value, split=selection.name,
            resamples=options.bootstrap_resamples, seed=seed,
        ),
    }


def _select(
    records: list[ImageRecord], rows: list[ManifestRow], split: str
) -> tuple[dict[str, list[ImageRecord]], dict[str, Any]]:
    """Records per manifest split; label disagreements between folder and manifest are errors."""
    by_path = {record.path: record for record in records}
    selected: dict[str, list[ImageRecord]] = {}
    missing = 0
    for row in rows:
        record = by_path.get(row.path)
        if record is None:
            missing += 1 if row.split == split else 0
            continue
        if record.class_name != row.label:
            raise DataError(
                f"'{row.path}' is in class folder '{record.class_name}' but the manifest "
                f"labels it '{row.label}'."
            )
        selected.setdefault(row.split, []).append(record)
    for members in selected.values():
        members.sort(key=lambda r: r.path)
    chosen = selected.get(split, [])
    if not chosen:
        raise DataError(f"no file of the manifest's '{split}' split is in the data folder.")
    info = {
        "split": split,
        "files_in_manifest_split": sum(1 for row in rows if row.split == split),
        "found": len(chosen),
        "missing_from_data": missing,
    }
    return selected, info


def report(
    card: ModelCard,
    scan: ScanResult,
    selection: Selection,
    scores: np.ndarray,
    section: dict[str, Any],
    baseline: dict[str, Any],
    options: EvaluateOptions,
    *,
    seconds: float,
    gate: dict[str, Any] | None = None,
) -> Path:
    """predictions.csv and report.json in the report folder; the headline figures logged."""
    name = selection.name
    options.report_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(
        options.report_dir / PREDICTIONS_FILE,
        [(r.path, name, r.label, float(s)) for r, s in zip(selection.records, scores,
                                                            strict=True)],
        card.threshold,
    )
    path = write_report({
        "kind": "evaluate",
        "created_at": now_utc(),
        "command": list(options.command),
        "model": {
            "version_dir": str(options.version_dir),
            "name": card.name,
            "version": card.version,
            "architecture": card.architecture,
            "data_fingerprint": card.data_fingerprint,
            "card_test_metrics": card.metrics,
        },
        "data": data_section(scan),
        "selection": selection.description,
        "reencode": (
            f"every image re-encoded to {REENCODE_SIZE}x{REENCODE_SIZE} greyscale PNG"
            if options.reencode_png256 else None
        ),
        "threshold": {"value": card.threshold, "rule": card.threshold_rule,
                      "chosen_on": "validation (from the model card)"},
        name: section,
        "evaluated_split": name,
        "baseline_metadata_only": baseline,
        "input_gate": gate,
        "plots": section.get("plots", {}),
        "predictions": PREDICTIONS_FILE,
        "library_versions": library_versions(),
        "seconds_total": round(seconds, 1),
    }, options.report_dir)
    log_metrics(name, section["metrics"], None)
    logger.info("report: %s", path)
    return path

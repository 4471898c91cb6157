"""Scoring an exported model on a labelled folder, through its serving signature.

The images go through `canonical_bytes` and the exported `serving_default` signature, exactly
as in the service; the decision threshold comes from the model card. With a split manifest
(the one a training run saved) only that split's files are scored, and the metadata-only
baseline is refitted on the manifest's train split so it can be reported beside the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.baseline import DESCRIPTION as BASELINE_DESCRIPTION
from training.baseline import fit_metadata_baseline
from training.discovery import ClassLayout, DataError, ImageRecord, scan_images
from training.evaluation import DEFAULT_MIN_RECALL, choose_threshold
from training.export import load_signature, read_model_card
from training.reencoding import REENCODE_SIZE, reencode_png256
from training.report import (
    PREDICTIONS_FILE,
    data_section,
    evaluation_section,
    library_versions,
    now_utc,
    write_predictions,
    write_report,
)
from training.splitting import ManifestRow, read_manifest


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


def _say(message: str) -> None:
    print(message, flush=True)


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


def run_evaluation(options: EvaluateOptions) -> Path:
    """Score the model and write report.json and the plots; returns the report's path."""
    started = time.monotonic()
    card = read_model_card(options.version_dir)
    threshold = float(card["threshold"])
    layout = options.layout
    _say(f"scanning {layout.data_dir} (positive class: '{layout.positive}')")
    scan = scan_images(layout, options.min_images_per_class, progress=_say)
    for unreadable in scan.unreadable:
        _say(f"  unreadable, skipped: {unreadable.path}: {unreadable.reason}")

    selection: dict[str, Any] = {"split": "all files in the folder"}
    by_split: dict[str, list[ImageRecord]] = {}
    records = sorted(scan.records, key=lambda r: r.path)
    if options.manifest is not None:
        by_split, selection = _select(scan.records, read_manifest(options.manifest), options.split)
        selection["manifest"] = str(options.manifest)
        records = by_split[options.split]
    split_name = options.split if options.manifest is not None else "all"
    labels = np.array([r.label for r in records], dtype=np.int64)
    if len(set(labels.tolist())) < 2:
        raise DataError("the evaluated images hold one class only; both are needed.")

    images = [r.data for r in records]
    if options.reencode_png256:
        _say(f"re-encoding {len(images)} images to {REENCODE_SIZE}x{REENCODE_SIZE} greyscale PNG")
        images = [reencode_png256(data) for data in images]
    _say(f"scoring {len(images)} images with {options.version_dir} (threshold {threshold:.4f})")
    scores = load_signature(options.version_dir)(images)

    resamples, seed = options.bootstrap_resamples, options.bootstrap_seed
    title = f"{card.get('name', 'model')} v{card.get('version', '?')}, {split_name}"
    if options.reencode_png256:
        title += ", re-encoded"
    section = evaluation_section(
        labels, scores, threshold, split_name, layout.classes, options.report_dir, title,
        resamples, seed,
    )
    options.report_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(
        options.report_dir / PREDICTIONS_FILE,
        [(r.path, split_name, r.label, float(s)) for r, s in zip(records, scores, strict=True)],
        threshold,
    )

    baseline: dict[str, Any] = {
        "skipped": "needs --split-manifest with train and validation files in the data folder"
    }
    if by_split.get("train") and by_split.get("validation"):
        train, val = by_split["train"], by_split["validation"]
        model = fit_metadata_baseline(
            [r.metadata for r in train], np.array([r.label for r in train]), seed
        )
        choice = choose_threshold(
            np.array([r.label for r in val]), model.predict([r.metadata for r in val]),
            DEFAULT_MIN_RECALL,
        )
        # The baseline reads the stored files' metadata, never the re-encoded images.
        baseline = {
            "description": BASELINE_DESCRIPTION,
            "input": "the stored files' metadata (never re-encoded)",
            "threshold": choice.value,
            **evaluation_section(
                labels, model.predict([r.metadata for r in records]), choice.value, split_name,
                layout.classes, None, "", resamples, seed,
            ),
        }

    report: dict[str, Any] = {
        "kind": "evaluate",
        "created_at": now_utc(),
        "command": list(options.command),
        "model": {
            "version_dir": str(options.version_dir),
            "name": card.get("name"),
            "version": card.get("version"),
            "architecture": card.get("architecture"),
            "data_fingerprint": card.get("data_fingerprint"),
            "card_test_metrics": card.get("metrics"),
        },
        "data": data_section(scan),
        "selection": selection,
        "reencode": (
            f"every image re-encoded to {REENCODE_SIZE}x{REENCODE_SIZE} greyscale PNG"
            if options.reencode_png256 else None
        ),
        "threshold": {"value": threshold, "rule": card.get("threshold_rule"),
                      "chosen_on": "validation (from the model card)"},
        split_name: section,
        "evaluated_split": split_name,
        "baseline_metadata_only": baseline,
        "plots": section.get("plots", {}),
        "predictions": PREDICTIONS_FILE,
        "library_versions": library_versions(),
        "seconds_total": round(time.monotonic() - started, 1),
    }
    path = write_report(report, options.report_dir)
    metrics = section["metrics"]
    _say(f"{split_name} ({metrics['n']} images): " + ", ".join(
        f"{name} {metrics[name]['value']:.3f}"
        for name in ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc")
    ))
    _say(f"report: {path}")
    return path

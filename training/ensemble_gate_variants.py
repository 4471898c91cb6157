"""`python -m training.ensemble_gate_variants`: the ensemble gates we compared on one finished
cross-validation run (docs/model-report.md, "The input gate of the ensemble").

Member k's gate is fitted on the folds member k trained on (ensemble_gate.fit_ensemble_gate)
and its threshold chosen on fold k, which it never saw. Rows: each member's gate alone at
99.5%, then the union (an image passes only when every member's gate does) at 99.5%, 99.8% and
99.9% per member. Each row: test acceptance and the share of the OOD set refused, by kind. The
OOD set only measures; nothing is fitted or chosen on it.

    python -m training.ensemble_gate_variants --data DATA --run-dir RUN --ood OOD
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.architectures import build_model
from training.cross_validation import CrossValidation
from training.discovery import resolve_classes, scan_images
from training.ensemble import build_ensemble
from training.ensemble_gate import fit_ensemble_gate
from training.fitting import TrainingConfig
from training.fold_fitting import FINAL_WEIGHTS, fold_dir, fold_seed
from training.folds import FOLDS_FILE
from training.gate_evaluation import read_ood_set
from training.input_gate import choose_gate_threshold, gate_inputs
from training.ood_set import FAR_OOD_KINDS, NEAR_OOD_KINDS
from training.splitting import read_manifest
from training.train_report import MANIFEST_FILE

TARGET = 0.995
UNION_TARGETS = (0.995, 0.998, 0.999)
Scores = dict[str, np.ndarray]  # "held_out", "test" and every OOD kind -> raw member scores


def _development(data: Path, run_dir: Path) -> tuple[CrossValidation, list[bytes]]:
    """The run's development slices with their folds, and its test slices' bytes."""
    records = {r.path: r for r in scan_images(resolve_classes(data)).records}
    with (run_dir / FOLDS_FILE).open(newline="", encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: row["path"])
    cv = CrossValidation([records[row["path"]] for row in rows], [row["group"] for row in rows],
                         np.array([int(row["fold"]) for row in rows]), [])
    test = [records[r.path].data for r in read_manifest(run_dir / MANIFEST_FILE)
            if r.split == "test" and r.path in records]
    return cv, test


def member_scores(data: Path, run_dir: Path, ood_dir: Path) -> list[Scores]:
    """Each member's own gate's raw scores: on its held-out fold, on test, on each OOD kind."""
    cv, test = _development(data, run_dir)
    config = TrainingConfig()
    folds = int(cv.folds.max()) + 1
    members = [build_model(config.architecture, config.preprocess(), seed=fold_seed(config, k))
               for k in range(folds)]
    for k, member in enumerate(members):
        member.load_weights(str(fold_dir(run_dir, k) / FINAL_WEIGHTS))
    union = fit_ensemble_gate(build_ensemble(members, 1.0, True), config.preprocess(), cv, TARGET)
    sets = {"test": test, **{kind.kind: kind.images for kind in read_ood_set(ood_dir)}}
    scores: list[Scores] = []
    for k, (member, gate) in enumerate(zip(members, union.gates, strict=True)):
        held = cv.folds == k
        raw = {"held_out": union.held_out_scores[held] + union.thresholds[k]}
        for name, images in sets.items():
            inputs = gate_inputs(member, config.preprocess(), images)
            raw[name] = gate.score(inputs.features, inputs.colour, inputs.aspect).numpy()
        scores.append(raw)
    return scores


def _row(name: str, passed: dict[str, np.ndarray], kinds: list[str]) -> str:
    far = [k for k in FAR_OOD_KINDS if k in kinds]
    cells = [f"{np.mean(passed['test']):.3f}",
             f"{1 - np.mean(np.concatenate([passed[k] for k in far])):.3f}",
             *(f"{1 - np.mean(passed[k]):.3f}" for k in far + [k for k in NEAR_OOD_KINDS
                                                              if k in kinds])]
    return "| " + " | ".join([name, *cells]) + " |"


def measure(scores: list[Scores]) -> list[str]:
    kinds = [k for k in scores[0] if k not in ("held_out", "test")]
    far = [k for k in FAR_OOD_KINDS if k in kinds]
    near = [k for k in NEAR_OOD_KINDS if k in kinds]
    header = ["gate", "test accepted", "far OOD refused", *far, *near]
    rows = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    names = ["test", *kinds]
    for k, raw in enumerate(scores):
        threshold = choose_gate_threshold(raw["held_out"], TARGET)
        rows.append(_row(f"member {k + 1} alone (threshold {threshold:.2f})",
                         {n: raw[n] >= threshold for n in names}, kinds))
    for target in UNION_TARGETS:
        thresholds = [choose_gate_threshold(raw["held_out"], target) for raw in scores]
        passed = {n: np.all([raw[n] >= t for raw, t in zip(scores, thresholds, strict=True)],
                            axis=0) for n in names}
        rows.append(_row(f"all members, {100 * target:.1f}% each", passed, kinds))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.ensemble_gate_variants",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--run-dir", type=Path, required=True,
                        help="a finished cross-validation run (folds.csv, folds/, manifest.csv)")
    parser.add_argument("--ood", type=Path, required=True, help="python -m training.ood_set")
    args = parser.parse_args(argv)
    print("\n".join(measure(member_scores(args.data, args.run_dir, args.ood))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


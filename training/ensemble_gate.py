"""The input gate of an ensemble: one gate per member, and an image must pass all of them.

Member k was trained on every fold but fold k. Its gate (input_gate.FittedGate, on member k's
activations) is fitted on exactly those slices, as a single network's gate is fitted on its
training split, and its threshold is chosen on fold k, which member k never saw: so each
member's promise (`--gate-acceptance` of real slices pass) is measured on slices as new to that
network as a user's. The exported score is the lowest of the members' scores, each minus its
threshold (input_gate.UnionGate), and the card's threshold is 0. Why all members and not one:
docs/model-report.md#the-input-gate-of-the-ensemble.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from model_contract import GATE_OUTPUT_KEY
from training.cross_validation import CrossValidation
from training.ensemble import ensemble_members
from training.export import OutputsFn
from training.gate_evaluation import GateCheck, check_gate, read_ood_set
from training.input_gate import UnionGate, choose_gate_threshold, fit_input_gate, gate_inputs
from training.preprocessing import PreprocessConfig

logger = logging.getLogger(__name__)
UNION_THRESHOLD = 0.0  # the shifted scores' own threshold
CHOSEN_ON = ("each member's threshold on the fold it never saw; the validation acceptance is "
             "each development slice scored by the gate of the member that never saw it")


def fit_ensemble_gate(model: keras.Model, preprocess: PreprocessConfig, cv: CrossValidation,
                      target_acceptance: float) -> UnionGate:
    """Member k's gate fitted on the folds it trained on, thresholded on fold k."""
    images = [record.data for record in cv.records]
    gates, thresholds = [], []
    held_out_scores = np.zeros(len(images), dtype=np.float32)
    for fold, member in enumerate(ensemble_members(model)):
        trained = np.flatnonzero(cv.folds != fold)
        held = np.flatnonzero(cv.folds == fold)
        gate = fit_input_gate(member, preprocess, [images[i] for i in trained],
                              cv.labels[trained])
        inputs = gate_inputs(member, preprocess, [images[i] for i in held])
        scores = gate.score(inputs.features, inputs.colour, inputs.aspect).numpy()
        threshold = choose_gate_threshold(scores, target_acceptance)
        logger.info("  member %d's gate: threshold %.4f on its %d held-out slices", fold + 1,
                    threshold, len(held))
        gates.append(gate)
        thresholds.append(threshold)
        held_out_scores[held] = scores - threshold
    return UnionGate(tuple(gates), tuple(thresholds), held_out_scores)


def check_ensemble_gate(gate: UnionGate, outputs: OutputsFn, cv: CrossValidation,
                        test_paths: list[str], test_gate_scores: np.ndarray,
                        target_acceptance: float, ood_dir: Path | None) -> GateCheck:
    """Acceptance of the development slices (each by its held-out member's gate) and of test
    (through the staged export); with `ood_dir`, refusal per kind of image."""
    ood = None
    if ood_dir is not None:
        ood = (read_ood_set(ood_dir), lambda images: outputs(images)[GATE_OUTPUT_KEY])
    check = check_gate(
        {"validation": gate.held_out_scores, "test": test_gate_scores},
        {"validation": [record.path for record in cv.records], "test": test_paths},
        target_acceptance, ood, threshold=UNION_THRESHOLD,
    )
    return GateCheck(check.threshold, check.target_acceptance, check.acceptance, check.refused,
                     check.ood, chosen_on=CHOSEN_ON)

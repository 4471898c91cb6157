"""The input gate of an ensemble: fitted and thresholded on slices its first member's fold
split keeps apart.

The gate reads the first ensemble member's activations (input_gate.feature_model). That member
was trained on every fold but the first, so the gate is fitted on exactly those slices (as a
single network's gate is fitted on its training split) and its threshold is chosen on the
first fold, which that member never saw: the acceptance it promises is measured on slices as
new to the network as a user's. Test is measured against that threshold, as before.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np

from model_contract import GATE_OUTPUT_KEY
from training.cross_validation import CrossValidation
from training.export import OutputsFn
from training.gate_evaluation import GateCheck, check_gate, read_ood_set
from training.input_gate import FittedGate, fit_input_gate
from training.preprocessing import PreprocessConfig

logger = logging.getLogger(__name__)
GATE_FOLD = 0  # the first member's held-out fold
CHOSEN_ON = "the first fold (held out from the ensemble member whose features the gate reads)"


def _members_fold(cv: CrossValidation) -> np.ndarray:
    return np.asarray(cv.folds == GATE_FOLD, dtype=bool)


def fit_ensemble_gate(model: keras.Model, preprocess: PreprocessConfig,
                      cv: CrossValidation) -> FittedGate:
    """The gate, fitted on the slices the first member trained on."""
    trained_on = np.flatnonzero(~_members_fold(cv))
    return fit_input_gate(model, preprocess, [cv.records[i].data for i in trained_on],
                          cv.labels[trained_on])


def check_ensemble_gate(outputs: OutputsFn, cv: CrossValidation, test_paths: list[str],
                        test_gate_scores: np.ndarray, target_acceptance: float,
                        ood_dir: Path | None) -> GateCheck:
    """The threshold from the first fold's scores through the staged export; acceptance on
    that fold and on test; with `ood_dir`, refusal per kind of image."""
    held = np.flatnonzero(_members_fold(cv))
    held_scores = outputs([cv.records[i].data for i in held])[GATE_OUTPUT_KEY]
    ood = None
    if ood_dir is not None:
        ood = (read_ood_set(ood_dir), lambda images: outputs(images)[GATE_OUTPUT_KEY])
    check = check_gate(
        {"validation": held_scores, "test": test_gate_scores},
        {"validation": [cv.records[i].path for i in held], "test": test_paths},
        target_acceptance, ood,
    )
    return GateCheck(check.threshold, check.target_acceptance, check.acceptance, check.refused,
                     check.ood, chosen_on=CHOSEN_ON)

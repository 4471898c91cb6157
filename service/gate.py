"""The brain-MRI input gate's policy: the model computes the score, the card holds the
threshold, and this module decides what an answer does with them (MRI_INPUT_GATE).

- `enforce` (default): an image scoring below the threshold is refused (`NotBrainMRI`);
- `report`: every image is answered, with `passed: false` on the ones that fail;
- `off`: the gate is not consulted and answers carry no input check.

A model without a gate (an older version) is served as before, its answers without an input
check, whatever the mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from model_contract import ModelCard
from service.errors import NotBrainMRI
from service.model import ModelAnswer


class GateMode(StrEnum):
    ENFORCE = "enforce"
    REPORT = "report"
    OFF = "off"


@dataclass(frozen=True)
class InputCheck:
    brain_mri_score: float
    brain_mri_threshold: float
    passed: bool


GateStatus = Literal["enforce", "report", "off", "absent"]


def gate_status(card: ModelCard, mode: GateMode) -> GateStatus:
    """What the gate does for this model: the mode, or `absent` when the model has none."""
    if card.input_gate is None:
        return "absent"
    return "enforce" if mode is GateMode.ENFORCE else "report" if mode is GateMode.REPORT \
        else "off"


def check_input(answer: ModelAnswer, card: ModelCard, mode: GateMode) -> InputCheck | None:
    """The answer's input check, or None when there is none to make; raises NotBrainMRI for an
    image that fails the gate in `enforce` mode."""
    gate = card.input_gate
    score = answer.brain_mri_score
    if mode is GateMode.OFF or gate is None or score is None:
        return None
    passed = score >= gate.threshold
    if not passed and mode is GateMode.ENFORCE:
        raise NotBrainMRI(score, gate.threshold)
    return InputCheck(brain_mri_score=score, brain_mri_threshold=gate.threshold, passed=passed)

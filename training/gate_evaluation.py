"""Measuring the input gate: how many real slices it lets through (per split), how many other
images it refuses, by kind (the folders `ood_set.py` writes, or any `<kind>/` sub-folders).

Kinds named in `ood_set.NEAR_OOD_KINDS` (head CT, non-brain MR) are reported apart from the
far out-of-distribution ones, whose refusal is the headline figure; `ood_set.CONTROL_KINDS`
(brain MRI from another source) are reported as acceptance. Any other sub-folder counts as
far out-of-distribution.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_contract import Acceptance, InputGate, OodRefusal, canonical_bytes
from training.input_gate import Gate, acceptance_rate, choose_gate_threshold, gate_section
from training.ood_set import CONTROL_KINDS, NEAR_OOD_KINDS

logger = logging.getLogger(__name__)

ScoreFn = Callable[[Sequence[bytes]], np.ndarray]


@dataclass(frozen=True)
class KindImages:
    kind: str
    paths: list[str]  # relative to the set's folder
    images: list[bytes]  # canonical bytes


def read_ood_set(folder: Path) -> list[KindImages]:
    """Every readable image of every `<kind>/` sub-folder, in name order."""
    if not folder.is_dir():
        raise FileNotFoundError(f"OOD folder {folder} does not exist")
    kinds = []
    for kind_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        paths, images = [], []
        for path in sorted(p for p in kind_dir.iterdir() if p.is_file()):
            try:
                images.append(canonical_bytes(path.read_bytes()))
            except (OSError, ValueError, SyntaxError) as error:
                logger.warning("  unreadable, skipped: %s: %s", path, error)
                continue
            paths.append(f"{kind_dir.name}/{path.name}")
        if images:
            kinds.append(KindImages(kind_dir.name, paths, images))
    if not kinds:
        raise ValueError(f"no image in any sub-folder of {folder}")
    return kinds


def _rate(values: np.ndarray) -> float:
    return round(float(np.mean(values)), 4) if len(values) else float("nan")


def evaluate_ood(kinds: list[KindImages], score: ScoreFn, threshold: float) -> dict[str, Any]:
    """Refusal per kind (score < threshold), far and near apart, the controls' acceptance, and
    each image's score, for the report."""
    by_kind: dict[str, Any] = {}
    far_refused: list[np.ndarray] = []
    images: list[dict[str, Any]] = []
    for entry in kinds:
        scores = score(entry.images)
        refused = scores < threshold
        role = ("control" if entry.kind in CONTROL_KINDS
                else "near" if entry.kind in NEAR_OOD_KINDS else "far")
        by_kind[entry.kind] = {"role": role, "n": len(scores), "refused": int(refused.sum()),
                               "refusal": _rate(refused)}
        if role == "far":
            far_refused.append(refused)
        images += [{"path": p, "kind": entry.kind, "score": round(float(s), 4),
                    "refused": bool(r)} for p, s, r in zip(entry.paths, scores, refused,
                                                            strict=True)]
    far = np.concatenate(far_refused) if far_refused else np.zeros(0, dtype=bool)
    return {"threshold": threshold, "far_overall_refusal": _rate(far), "far_n": len(far),
            "by_kind": by_kind, "images": images}


def refusal_for_card(result: dict[str, Any]) -> OodRefusal:
    """The card's `ood_refusal`: far overall and per kind, near-OOD apart (controls left out)."""
    kinds = result["by_kind"]
    return OodRefusal(
        overall=result["far_overall_refusal"],
        by_kind={k: v["refusal"] for k, v in kinds.items() if v["role"] == "far"},
        near_ood={k: v["refusal"] for k, v in kinds.items() if v["role"] == "near"},
    )


def log_ood(result: dict[str, Any]) -> None:
    logger.info("input gate on the OOD set (threshold %.4f): far OOD refused %.3f of %d",
                result["threshold"], result["far_overall_refusal"], result["far_n"])
    for kind, entry in result["by_kind"].items():
        verb = "accepted" if entry["role"] == "control" else "refused"
        share = 1.0 - entry["refusal"] if entry["role"] == "control" else entry["refusal"]
        logger.info("  %-24s %-7s %s %.3f of %d", kind, entry["role"], verb, share, entry["n"])


@dataclass(frozen=True)
class GateCheck:
    """The gate's threshold (chosen on validation) and what it does on each split and set."""

    threshold: float
    target_acceptance: float
    acceptance: dict[str, float]  # split -> share of real slices passing
    refused: dict[str, list[str]]  # split -> the real slices it refuses
    ood: dict[str, Any] | None  # evaluate_ood's result, when an OOD folder was given
    chosen_on: str = "validation"  # what the `validation` scores were

    def card_section(self, gate: Gate) -> InputGate:
        return gate_section(
            gate, self.threshold, self.target_acceptance,
            Acceptance(self.acceptance.get("validation"), self.acceptance.get("test")),
            None if self.ood is None else refusal_for_card(self.ood),
        )

    def report_section(self, gate: Gate) -> dict[str, Any]:
        return {
            "card": dataclasses.asdict(self.card_section(gate)),
            "threshold_chosen_on": self.chosen_on,
            "acceptance": self.acceptance,
            "refused_real_slices": self.refused,
            "ood": self.ood,
        }


def check_gate(
    scores: dict[str, np.ndarray],
    paths: dict[str, list[str]],
    target_acceptance: float,
    ood: tuple[list[KindImages], ScoreFn] | None,
    threshold: float | None = None,
) -> GateCheck:
    """Choose the threshold on the validation scores (unless it is given), then measure every
    split (and the OOD set, when given) against it."""
    if threshold is None:
        threshold = choose_gate_threshold(scores["validation"], target_acceptance)
    acceptance = {name: round(acceptance_rate(values, threshold), 4)
                  for name, values in scores.items()}
    refused = {name: [p for p, s in zip(paths[name], values, strict=True) if s < threshold]
               for name, values in scores.items()}
    logger.info("input gate: threshold %.4f (%.1f%% of validation passes); acceptance %s",
                threshold, 100 * target_acceptance,
                ", ".join(f"{k} {v:.4f}" for k, v in acceptance.items()))
    result = None
    if ood is not None:
        result = evaluate_ood(ood[0], ood[1], threshold)
        log_ood(result)
    return GateCheck(threshold, target_acceptance, acceptance, refused, result)

"""Named operating points, chosen on the out-of-fold predictions and measured on test.

- `screening` (the default): among thresholds keeping out-of-fold sensitivity >= 0.95, the one
  maximising Youden's J; a triage aid must not miss tumors.
- `balanced`: the threshold maximising Youden's J (sensitivity + specificity - 1) outright.

Both are picked on calibrated out-of-fold P(tumor), the scores the exported model gives; the
test split only measures them (sensitivity and specificity with 95% bootstrap intervals).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from model_contract import OperatingPoint, OperatingPoints
from training.evaluation import choose_threshold, evaluate_scores
from training.report import json_ready

DEFAULT_OPERATING_POINT = "screening"
SCREENING_MIN_SENSITIVITY = 0.95
RULES = {
    "screening": ("among thresholds keeping out-of-fold sensitivity >= {min_sensitivity}, the "
                  "one maximising Youden's J (sensitivity + specificity - 1), ties to the higher "
                  "threshold; positive when P(tumor) >= threshold"),
    "balanced": ("the threshold maximising Youden's J (sensitivity + specificity - 1) on the "
                 "out-of-fold predictions, ties to the higher; positive when P(tumor) >= "
                 "threshold"),
}


def plain_summary(sensitivity: float, specificity: float) -> str:
    """What the operating point does, in words a non-statistician reads."""
    flagged = round(100 * sensitivity)
    false_alarms = round(100 * (1.0 - specificity))
    return (f"flags about {flagged} of 100 tumor slices; about {false_alarms} of 100 slices "
            "without a tumor are flagged too")


def choose_points(labels: np.ndarray, oof_scores: np.ndarray,
                  min_sensitivity: float = SCREENING_MIN_SENSITIVITY) -> dict[str, dict[str, Any]]:
    """{name: {"threshold", "rule", "chosen_on_metrics"}} from out-of-fold labels and scores."""
    chosen = {"screening": choose_threshold(labels, oof_scores, min_sensitivity),
              "balanced": choose_threshold(labels, oof_scores, 0.0)}
    return {
        name: {
            "threshold": choice.value,
            "rule": RULES[name].format(min_sensitivity=min_sensitivity),
            "chosen_on_metrics": {"sensitivity": choice.validation.get("recall"),
                                  "specificity": choice.validation.get("specificity"),
                                  "youden_j": choice.validation.get("youden_j")},
        }
        for name, choice in chosen.items()
    }


def measure_point(labels: np.ndarray, scores: np.ndarray, threshold: float, resamples: int,
                  seed: int) -> dict[str, Any]:
    """Test sensitivity, specificity, accuracy, precision and counts at one threshold."""
    metrics = evaluate_scores(labels, scores, threshold, "test", resamples, seed)
    measured: dict[str, Any] = json_ready({
        "n": metrics["n"],
        "sensitivity": metrics["recall"],
        "specificity": metrics["specificity"],
        "accuracy": metrics["accuracy"],
        "precision": metrics["precision"],
        "confusion_matrix": metrics["confusion_matrix"],
    })
    return measured


def build_operating_points(chosen: dict[str, dict[str, Any]], chosen_on: str,
                           test_labels: np.ndarray, test_scores: np.ndarray, *,
                           resamples: int, seed: int) -> OperatingPoints:
    """The card's `operating_points`, each measured on the test split."""
    points = {}
    for name, point in chosen.items():
        test = measure_point(test_labels, test_scores, point["threshold"], resamples, seed)
        points[name] = OperatingPoint(
            threshold=float(point["threshold"]),
            rule=point["rule"],
            summary=plain_summary(test["sensitivity"]["value"], test["specificity"]["value"]),
            chosen_on=chosen_on,
            test=test,
            chosen_on_metrics=json_ready(point["chosen_on_metrics"]),
        )
    return OperatingPoints(default=DEFAULT_OPERATING_POINT, points=points)

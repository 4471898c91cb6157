"""The model card written beside the SavedModel (model_contract/card.py is its schema).

`export.publish` fills in name, version, creation time and the input description; this module
builds the rest from the run.
"""

from __future__ import annotations

from typing import Any

from model_contract import ModelCard
from training.report import json_ready

# The signature's output is P(tumor) whatever the class folders are called; the folder names
# are recorded in the card's training section.
CLASSES = ("healthy", "tumor")
POSITIVE_CLASS = "tumor"
INTENDED_USE = (
    "A research and triage aid that flags 2-D brain MRI slices likely to show a tumor for "
    "review by a qualified reader; not a diagnostic device, and not validated for clinical use."
)
CARD_METRIC_KEYS = (
    "split", "n", "n_positive", "n_negative", "threshold",
    "accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "pr_auc", "brier",
    "confusion_matrix", "bootstrap",
)
BASELINE_SUMMARY = "width, height, colour mode and file format only; same test split"


def card_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    # NaN (an undefined metric) is not JSON: the card says null instead.
    chosen: dict[str, Any] = json_ready({k: metrics[k] for k in CARD_METRIC_KEYS if k in metrics})
    return chosen


def build_card(
    *,
    threshold: float,
    threshold_rule: str,
    test_metrics: dict[str, Any],
    baseline_test_metrics: dict[str, Any] | None,
    data_fingerprint: str,
    training: dict[str, Any],
    architecture: dict[str, Any],
    library_versions: dict[str, str],
) -> ModelCard:
    baseline = None
    if baseline_test_metrics is not None:
        baseline = {"description": BASELINE_SUMMARY,
                    "metrics": card_metrics(baseline_test_metrics)}
    return ModelCard(
        name="",  # publish() sets name and version
        version=0,
        classes=CLASSES,
        positive_class=POSITIVE_CLASS,
        threshold=float(threshold),
        threshold_rule=threshold_rule,
        architecture=json_ready(architecture),
        metrics=card_metrics(test_metrics),
        metadata_only_baseline=baseline,
        data_fingerprint=data_fingerprint,
        training=json_ready(training),
        library_versions=library_versions,
        intended_use=INTENDED_USE,
    )

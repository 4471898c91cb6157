"""The model card written beside the SavedModel (docs/model-contract.md says what it holds).

`export_model` fills in name, version, creation time and the input description; this module
builds the rest from the run.
"""

from __future__ import annotations

from typing import Any

# The signature's output is P(tumor) whatever the class folders are called; the folder names
# are recorded in the card's training section.
CLASSES = ["healthy", "tumor"]
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


def card_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: metrics[key] for key in CARD_METRIC_KEYS if key in metrics}


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
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "classes": CLASSES,
        "positive_class": POSITIVE_CLASS,
        "threshold": threshold,
        "threshold_rule": threshold_rule,
        "architecture": architecture,
        "metrics": card_metrics(test_metrics),
        "data_fingerprint": data_fingerprint,
        "training": training,
        "library_versions": library_versions,
        "intended_use": INTENDED_USE,
    }
    if baseline_test_metrics is not None:
        card["metadata_only_baseline"] = {
            "description": "width, height, colour mode and file format only; same test split",
            "metrics": card_metrics(baseline_test_metrics),
        }
    return card

"""The publishing guard: which trained models may become a served version."""

from __future__ import annotations

from typing import Any

from training.publishing import DEFAULT_MIN_ROC_AUC, PublishPolicy


def _metrics(roc_auc: float) -> dict[str, Any]:
    return {"roc_auc": {"value": roc_auc, "ci95": [roc_auc - 0.01, roc_auc + 0.01]}}


def test_a_model_above_both_bars_is_published() -> None:
    assert PublishPolicy().refusal(_metrics(0.984), _metrics(0.62)) is None


def test_below_the_metadata_baseline_is_refused_even_above_the_minimum() -> None:
    reason = PublishPolicy(min_roc_auc=0.5).refusal(_metrics(0.80), _metrics(0.85))
    assert reason is not None and "metadata-only baseline" in reason and "0.8000" in reason


def test_below_the_minimum_is_refused_with_the_figures() -> None:
    assert DEFAULT_MIN_ROC_AUC == 0.95
    reason = PublishPolicy().refusal(_metrics(0.9401), _metrics(0.6))
    assert reason is not None and "0.9401" in reason and "--min-roc-auc 0.9500" in reason


def test_quick_runs_are_held_back_and_publish_anyway_overrides_everything() -> None:
    assert "--quick" in (PublishPolicy(quick=True).refusal(_metrics(0.99), None) or "")
    assert PublishPolicy(anyway=True, quick=True).refusal(_metrics(0.3), _metrics(0.9)) is None

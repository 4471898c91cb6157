"""The layer comparison of the model report (training/explain_variants.py): its variants and
its summary, on hand-made rows."""

from __future__ import annotations

import pytest

from training.explain_variants import summarise_variants, variants


def test_variants_are_every_stage_and_the_averages_of_the_last_ones() -> None:
    chosen = variants(4)
    assert chosen["stage 1"] == (0,) and chosen["stage 4"] == (3,)
    assert chosen["mean of last 2"] == (2, 3)
    assert chosen["mean of last 4"] == (0, 1, 2, 3)
    assert len(chosen) == 7


def test_summary_compares_each_variant_with_the_shared_random_draws() -> None:
    rows = [
        {"p_original": 0.9, "p_random": [0.8, 0.9], "p_top": {"a": 0.2, "b": 0.95},
         "rank_correlation": {"a": 0.2}},
        {"p_original": 0.9, "p_random": [0.5, 0.7], "p_top": {"a": 0.4, "b": 0.9},
         "rank_correlation": {"a": float("nan")}},
    ]
    summary = summarise_variants(rows)
    assert summary["slices"] == 2
    assert summary["a"]["share_vs_mean"] == pytest.approx(1.0)
    assert summary["a"]["share_vs_each_draw"] == pytest.approx(1.0)
    assert summary["b"]["share_vs_mean"] == pytest.approx(0.0)
    assert summary["b"]["share_rising_after_top"] == pytest.approx(0.5)
    assert summary["a"]["mean_rank_correlation"] == pytest.approx(0.2)  # nan left out
    assert "mean_rank_correlation" not in summary["b"]

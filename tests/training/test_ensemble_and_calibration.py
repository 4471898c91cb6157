"""Folds by group, temperature scaling, operating points, the publish guard, the ensemble."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.architectures import build_model
from training.calibration import fit_calibration, log_loss
from training.ensemble import build_ensemble, ensemble_members, mean_logit, sigmoid
from training.evaluation import reliability_curve
from training.folds import assign_folds
from training.operating_points import choose_points, plain_summary
from training.preprocessing import PreprocessConfig
from training.publishing import PublishPolicy


def _grouped(n_groups: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, n_groups)
    groups = [f"g{g}" for g, size in enumerate(sizes) for _ in range(size)]
    labels = np.array([g % 2 for g, size in enumerate(sizes) for _ in range(size)])
    return labels, groups


def test_folds_keep_groups_whole_balance_labels_and_repeat_from_the_seed() -> None:
    labels, groups = _grouped(200)
    folds = assign_folds(labels, groups, 5, seed=3)
    fold_of: dict[str, int] = {}
    for group, fold in zip(groups, folds.tolist(), strict=True):
        assert fold_of.setdefault(group, fold) == fold
    assert set(folds.tolist()) == set(range(5))
    shares = [labels[folds == k].mean() for k in range(5)]
    assert max(shares) - min(shares) < 0.15
    np.testing.assert_array_equal(folds, assign_folds(labels, groups, 5, seed=3))
    assert not np.array_equal(folds, assign_folds(labels, groups, 5, seed=4))
    with pytest.raises(ValueError, match="cannot make"):
        assign_folds(labels[:3], groups[:3], 5, seed=0)


def test_calibration_recovers_an_overconfident_biased_models_temperature_and_shift() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0.0, 2.0, 20_000)
    labels = (rng.random(true_logits.size) < sigmoid(true_logits)).astype(int)
    skewed = 3.0 * (true_logits + 1.0)  # logits 3x too large and leaning to the positive class
    temperature, intercept = fit_calibration(labels, skewed)
    assert temperature == pytest.approx(3.0, rel=0.05)
    assert intercept == pytest.approx(-1.0, abs=0.1)
    fixed = skewed / temperature + intercept
    before = reliability_curve(labels, sigmoid(skewed))["expected_calibration_error"]
    after = reliability_curve(labels, sigmoid(fixed))["expected_calibration_error"]
    assert after < 0.02 < before
    assert log_loss(labels, fixed) < log_loss(labels, skewed)


def test_screening_keeps_sensitivity_and_balanced_maximises_youden() -> None:
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(300, int), np.zeros(300, int)]
    scores = np.r_[rng.beta(5, 2, 300), rng.beta(2, 5, 300)]
    points = choose_points(labels, scores, min_sensitivity=0.95)
    screening, balanced = points["screening"], points["balanced"]
    flagged = scores >= screening["threshold"]
    assert flagged[labels == 1].mean() >= 0.95
    assert screening["threshold"] < balanced["threshold"]
    # No threshold beats the balanced one's Youden's J.
    j = [(scores[labels == 1] >= t).mean() - (scores[labels == 0] >= t).mean()
         for t in np.unique(scores)]
    assert balanced["chosen_on_metrics"]["youden_j"] == pytest.approx(max(j))
    assert plain_summary(0.953, 0.912) == ("flags about 95 of 100 tumor slices; about 9 of 100 "
                                           "slices without a tumor are flagged too")


def test_publish_guard_refuses_weak_models_and_quick_runs_unless_told() -> None:
    def metrics(auc: float) -> dict[str, dict[str, float]]:
        return {"roc_auc": {"value": auc}}

    assert PublishPolicy().refusal(metrics(0.99), metrics(0.94)) is None
    below_baseline = PublishPolicy().refusal(metrics(0.96), metrics(0.97))
    assert below_baseline is not None and "baseline" in below_baseline
    below_minimum = PublishPolicy(min_roc_auc=0.98).refusal(metrics(0.97), metrics(0.90))
    assert below_minimum is not None and "--min-roc-auc" in below_minimum
    assert "\n" not in below_minimum
    quick = PublishPolicy(quick=True).refusal(metrics(0.99), metrics(0.5))
    assert quick is not None and "--quick" in quick
    assert PublishPolicy(quick=True, anyway=True).refusal(metrics(0.5), metrics(0.9)) is None


def test_ensemble_averages_member_logits_with_flips_and_applies_the_temperature() -> None:
    config = PreprocessConfig(32, 1, True)
    members = [build_model("compact", config, seed=s, augment=False, width=8) for s in (0, 1)]
    rng = np.random.default_rng(2)
    for member in members:  # non-trivial outputs: random dense weights
        dense = member.get_layer("tumor_probability")
        kernel, bias = dense.get_weights()
        dense.set_weights([rng.normal(0, 50, kernel.shape).astype(np.float32), bias])
    pixels = rng.random((6, 32, 32, 1)).astype(np.float32)
    views = [np.asarray(m(p, training=False)).reshape(-1)
             for m in members for p in (pixels, pixels[:, :, ::-1, :])]
    expected = sigmoid(mean_logit(views) / 1.7 - 0.4)
    ensemble = build_ensemble(members, temperature=1.7, flip_tta=True, intercept=-0.4)
    got = np.asarray(ensemble(pixels, training=False)).reshape(-1)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [m.name for m in ensemble_members(ensemble)] == ["member-1", "member-2"]
    assert isinstance(ensemble_members(members[0])[0], keras.Model)


def test_the_gates_ensemble_graph_gives_the_ensembles_output_and_every_members_features(
) -> None:
    """The graph the export serves: the ensemble's own P(tumor), and each member's features
    (what that member's gate was fitted on)."""
    from training.input_gate import feature_model

    keras.utils.set_random_seed(7)
    config = PreprocessConfig(32, 1, False)
    members = [build_model("compact", config, seed=s, augment=False) for s in (7, 8)]
    ensemble = build_ensemble(members, temperature=1.2, flip_tta=True, intercept=0.3)
    pixels = np.random.default_rng(7).random((3, 32, 32, 1)).astype(np.float32)
    probability, features = feature_model(ensemble)(pixels, training=False)
    np.testing.assert_allclose(probability, ensemble(pixels, training=False), atol=1e-6)
    assert len(features) == 2
    for member, member_features in zip(members, features, strict=True):
        _, alone = feature_model(member)(pixels, training=False)
        np.testing.assert_allclose(member_features, alone, atol=1e-6)
        assert float(np.ptp(np.asarray(member_features))) > 0
    assert not np.allclose(features[0], features[1])


def test_the_union_gate_passes_only_what_every_members_gate_passes() -> None:
    import tensorflow as tf

    from training.input_gate import UnionGate, fit_gate

    rng = np.random.default_rng(5)
    gates = []
    for _ in range(2):
        features = rng.normal(size=(200, 4))
        gates.append(fit_gate(features, np.arange(200) % 2, rng.random(200) * 0.1,
                              rng.normal(0, 0.05, 200)))
    union = UnionGate(tuple(gates), (-1.0, -2.0), np.zeros(0, np.float32))
    probe = [rng.normal(size=(50, 4)) * scale for scale in (1.0, 3.0)]
    colour, aspect = tf.constant(rng.random(50) * 0.1), tf.constant(rng.normal(0, 0.05, 50))
    combined = union.score(probe, colour, aspect).numpy()
    each = [g.score(f, colour, aspect).numpy() - t
            for g, f, t in zip(gates, probe, (-1.0, -2.0), strict=True)]
    np.testing.assert_allclose(combined, np.minimum(*each), atol=1e-6)
    assert ((combined >= 0) == ((each[0] >= 0) & (each[1] >= 0))).all()
    assert (combined < 0).any() and (combined >= 0).any()


def test_the_gate_comparison_rows_count_what_each_gate_and_the_union_refuse() -> None:
    from training.ensemble_gate_variants import measure

    held = np.linspace(0.0, 1.0, 1000)  # thresholds at 99.5%: 0.005 for both members
    members = [
        {"held_out": held, "test": np.array([0.5, 0.5]),
         "natural_photos": np.array([-1.0, -1.0, 0.5, 0.5]), "head_ct": np.array([-1.0, 0.5])},
        {"held_out": held, "test": np.array([0.5, -1.0]),
         "natural_photos": np.array([-1.0, 0.5, -1.0, 0.5]), "head_ct": np.array([0.5, 0.5])},
    ]
    rows = measure(members)
    assert rows[0] == ("| gate | test accepted | far OOD refused | natural_photos | head_ct |")
    assert rows[2].endswith("| 1.000 | 0.500 | 0.500 | 0.500 |")  # member 1 alone
    assert rows[3].endswith("| 0.500 | 0.500 | 0.500 | 0.000 |")  # member 2 alone
    assert rows[4].endswith("| 0.500 | 0.750 | 0.750 | 0.500 |")  # both must pass

"""training/input_gate.py and ood_set.py: the gate's score, its threshold rule, its graph
functions, and the OOD set the repository builds from installed packages."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from training.architectures import build_model
from training.input_gate import (
    FittedGate,
    acceptance_rate,
    choose_gate_threshold,
    feature_model,
    fit_gate,
    image_colour,
    squared_distances,
)
from training.ood_set import CONTROL_KINDS, FAR_OOD_KINDS, KINDS, NEAR_OOD_KINDS, build_ood_set
from training.preprocessing import PreprocessConfig


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _fitted(rng: np.random.Generator) -> tuple[FittedGate, np.ndarray]:
    features = rng.normal(0.0, 1.0, (400, 6))
    labels = np.arange(400) % 2
    features[labels == 1] += 3.0  # two classes, one shared covariance
    return fit_gate(features, labels, np.zeros(400)), features


def test_threshold_lets_the_target_share_of_validation_pass() -> None:
    scores = np.random.default_rng(0).normal(size=1000)
    threshold = choose_gate_threshold(scores, 0.995)
    assert acceptance_rate(scores, threshold) >= 0.995
    assert acceptance_rate(scores, np.nextafter(threshold, np.inf)) < 0.995  # the highest such
    assert choose_gate_threshold(scores, 1.0) == scores.min()
    with pytest.raises(ValueError):
        choose_gate_threshold(scores, 0.0)


def test_score_is_high_near_either_class_and_low_far_from_both() -> None:
    rng = np.random.default_rng(1)
    gate, features = _fitted(rng)
    near = np.array([[0.0] * 6, [3.0] * 6])
    far = np.array([[1.5] * 6, [12.0] * 6])  # between the classes, and far out
    scores = gate.score(tf.constant(np.vstack([near, far])), tf.zeros(4)).numpy()
    assert scores[:2].min() > scores[2:].max()
    # The training slices' 99th percentile scores -1 by construction; the better half scores 0,
    # the colour term of a greyscale image (0 at the training median) capping the score there.
    train = gate.score(tf.constant(features), tf.zeros(len(features))).numpy()
    assert np.quantile(train, 0.01) == pytest.approx(-1.0, abs=1e-5)
    assert np.mean(train == 0.0) == pytest.approx(0.5, abs=0.01) and train.max() == 0.0
    expected = -(squared_distances(np.vstack([near, far]), gate.class_means, gate.precision)
                 - gate.distance.median) / gate.distance.scale
    np.testing.assert_allclose(np.minimum(expected, 0.0), scores, rtol=1e-5, atol=1e-6)


def test_colour_lowers_the_score_of_an_otherwise_typical_image() -> None:
    gate, _ = _fitted(np.random.default_rng(2))
    grey = _png(Image.new("L", (40, 30), 120))
    tinted = _png(Image.new("RGB", (40, 30), (200, 60, 60)))
    colour = image_colour(tf.constant([grey, tinted])).numpy()
    assert colour[0] == 0.0 and colour[1] == pytest.approx(140 / 255, abs=1e-6)
    scores = gate.score(tf.constant(np.zeros((2, 6))), tf.constant(colour)).numpy()
    assert scores[1] < scores[0] - 10  # 0.55 chroma is dozens of 1% floors away


@pytest.mark.parametrize("architecture", ["compact", "seed"])
def test_feature_model_adds_outputs_not_weights(architecture: str) -> None:
    model = build_model(architecture, PreprocessConfig(32, 1, True), seed=0, augment=False)
    gated = feature_model(model)
    assert len(gated.weights) == len(model.weights)
    pixels = tf.random.uniform((3, 32, 32, 1), seed=0)
    probabilities, features = gated(pixels, training=False)
    np.testing.assert_allclose(probabilities, model(pixels, training=False), atol=1e-6)
    relu_maps = [layer for layer in model.layers
                 if isinstance(layer, keras.layers.ReLU) or getattr(layer, "activation", None)
                 is keras.activations.relu]
    assert features.shape[0] == 3 and features.shape[1] >= 32 and relu_maps


def test_the_ood_set_is_built_by_kind_from_installed_packages(tmp_path: Path) -> None:
    counts = build_ood_set(tmp_path / "ood")
    assert set(KINDS) == set(FAR_OOD_KINDS) | set(NEAR_OOD_KINDS) | set(CONTROL_KINDS)
    for kind in FAR_OOD_KINDS:
        assert counts[kind] >= 15, kind  # enough for a per-kind rate to mean something
    for kind in NEAR_OOD_KINDS + CONTROL_KINDS:
        assert counts[kind] >= 1, kind
    rows = list(csv.DictReader((tmp_path / "ood" / "manifest.csv").open()))
    assert len(rows) == sum(counts.values())
    for row in rows:
        path = tmp_path / "ood" / row["file"]
        assert path.parent.name == row["kind"] and row["source"]
        with Image.open(path) as image:
            assert min(image.size) >= 3

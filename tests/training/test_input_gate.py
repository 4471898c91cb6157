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
    make_gate_preprocess_fn,
    squared_distances,
)
from training.ood_set import CONTROL_KINDS, FAR_OOD_KINDS, KINDS, NEAR_OOD_KINDS, build_ood_set
from training.preprocessing import PreprocessConfig, make_preprocess_fn

CONFIG = PreprocessConfig(32, 1, True)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _fitted(rng: np.random.Generator) -> tuple[FittedGate, np.ndarray]:
    features = rng.normal(0.0, 1.0, (400, 6))
    labels = np.arange(400) % 2
    features[labels == 1] += 3.0  # two classes, one shared covariance
    return fit_gate(features, labels, np.zeros(400), np.zeros(400)), features


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
    scores = gate.score(tf.constant(np.vstack([near, far])), tf.zeros(4), tf.zeros(4)).numpy()
    assert scores[:2].min() > scores[2:].max()
    # The training slices' 99th percentile scores -1 by construction; the better half scores 0,
    # the colour term of a greyscale image (0 at the training median) capping the score there.
    zeros = tf.zeros(len(features))
    train = gate.score(tf.constant(features), zeros, zeros).numpy()
    assert np.quantile(train, 0.01) == pytest.approx(-1.0, abs=1e-5)
    assert np.mean(train == 0.0) == pytest.approx(0.5, abs=0.01) and train.max() == 0.0
    expected = -(squared_distances(np.vstack([near, far]), gate.class_means, gate.precision)
                 - gate.distance.median) / gate.distance.scale
    np.testing.assert_allclose(np.minimum(expected, 0.0), scores, rtol=1e-5, atol=1e-6)


def _gate_inputs(images: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pixels, colour, aspect = make_gate_preprocess_fn(CONFIG)(tf.constant(images))
    return pixels.numpy(), colour.numpy(), aspect.numpy()


def test_colour_lowers_the_score_of_an_otherwise_typical_image() -> None:
    gate, _ = _fitted(np.random.default_rng(2))
    grey = _png(Image.new("L", (40, 30), 120))
    tinted = _png(Image.new("RGB", (40, 30), (200, 60, 60)))
    _, colour, aspect = _gate_inputs([grey, tinted])
    assert colour[0] == 0.0 and colour[1] == pytest.approx(140 / 255, abs=1e-6)
    scores = gate.score(tf.constant(np.zeros((2, 6))), tf.constant(colour),
                        tf.zeros(2)).numpy()
    assert scores[1] < scores[0] - 10  # 0.55 chroma is dozens of 1% floors away


def test_a_small_coloured_region_counts_as_colour() -> None:
    """A Doppler-like overlay on 5% of a grey image: the mean chroma would dilute it 20 times;
    the 99th percentile is the overlay's own chroma."""
    array = np.full((100, 100, 3), 90, np.uint8)
    array[10:15, 20:120] = (230, 120, 20)  # 5 of 100 rows
    _, colour, _ = _gate_inputs([_png(Image.fromarray(array))])
    assert colour[0] == pytest.approx(210 / 255, abs=0.02)


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_jpeg_colour_is_measured_at_one_eighth_and_a_grey_jpeg_has_none() -> None:
    grey = _jpeg(Image.new("L", (256, 192), 120))
    tinted = _jpeg(Image.new("RGB", (256, 192), (200, 60, 60)))
    _, colour, _ = _gate_inputs([grey, tinted])
    assert colour[0] == 0.0
    assert colour[1] == pytest.approx(140 / 255, abs=0.03)  # JPEG's chroma error only


# Every mode a canonical PNG or JPEG arrives in (docs/model-contract.md).
def _every_mode() -> dict[str, bytes]:
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    images = {
        "L": Image.fromarray(rgba[..., 0]), "LA": Image.fromarray(rgba[..., :2], "LA"),
        "RGB": Image.fromarray(rgba[..., :3]), "RGBA": Image.fromarray(rgba),
        "P": Image.fromarray(rgba[..., :3]).convert("P"),
        "1": Image.fromarray(rgba[..., 0]).convert("1"),
        "I;16": Image.fromarray(rgba[..., 0].astype(np.uint16) * 257).convert("I;16"),
    }
    encoded = {f"{mode} PNG": _png(image) for mode, image in images.items()}
    encoded.update({f"{mode} JPEG": _jpeg(images[mode]) for mode in ("L", "RGB")})
    return encoded


def test_the_gate_pass_gives_the_networks_pixels_exactly() -> None:
    """The gate decodes each upload once where it can; the network must still get exactly the
    pixels training's preprocessing gives, in every mode."""
    encoded = _every_mode()
    expected = make_preprocess_fn(CONFIG)(tf.constant(list(encoded.values()))).numpy()
    pixels, colour, _ = _gate_inputs(list(encoded.values()))
    for index, name in enumerate(encoded):
        np.testing.assert_array_equal(pixels[index], expected[index], err_msg=name)
    greyscale = [name.split()[0] in ("L", "LA", "1", "I;16") for name in encoded]
    assert all(colour[greyscale] == 0.0) and all(colour[~np.array(greyscale)] > 0.0)


def _on_black(height: int, width: int, noise: float = 0.0) -> bytes:
    """A bright ellipse of the given size on a black 200x200 frame."""
    rows, cols = np.mgrid[0:200, 0:200]
    inside = ((rows - 100) / (height / 2)) ** 2 + ((cols - 100) / (width / 2)) ** 2 <= 1.0
    array = np.where(inside, 200.0, 0.0) + np.random.default_rng(4).normal(0, noise, (200, 200))
    return _png(Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)))


def test_the_head_aspect_is_its_box_and_ignores_faint_background_noise() -> None:
    _, _, aspect = _gate_inputs([_on_black(160, 120), _on_black(160, 120, noise=10.0),
                                 _on_black(40, 160)])
    assert aspect[0] == pytest.approx(np.log(160 / 120), abs=0.03)
    assert aspect[1] == pytest.approx(aspect[0], abs=0.03)  # noise at 5% of the head's level
    assert aspect[2] == pytest.approx(np.log(40 / 160), abs=0.05)


def test_an_unusual_shape_lowers_the_score() -> None:
    rng = np.random.default_rng(5)
    features, labels = rng.normal(size=(400, 6)), np.arange(400) % 2
    aspects = rng.normal(0.1, 0.1, 400)  # heads a little taller than wide
    gate = fit_gate(features, labels, np.zeros(400), aspects)
    scores = gate.score(tf.zeros((3, 6), tf.float64), tf.zeros(3),
                        tf.constant([0.1, np.log(4.0), np.log(0.25)], tf.float32)).numpy()
    assert scores[0] > -1.0 and scores[1] < -3.0 and scores[2] < -3.0


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

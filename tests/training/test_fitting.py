"""The training loop: cached pixels match the serving preprocessing; runs repeat from a seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from synthetic_images import encode, make_slice

from training.fitting import (
    TrainingConfig,
    balanced_class_weight,
    fit_model,
    make_dataset,
    preprocess_images,
)
from training.preprocessing import PreprocessConfig, make_preprocess_fn


def test_cached_pixels_are_the_serving_preprocessing_in_float16() -> None:
    images = [encode(make_slice(seed, 64, tumor=seed % 2 == 0), "PNG") for seed in range(5)]
    config = PreprocessConfig(image_size=24, channels=1, crop_to_brain=True)
    cached = preprocess_images(images, config, chunk=2)  # chunks of 2, 2 and 1
    reference = make_preprocess_fn(config)(tf.constant(images)).numpy()
    assert cached.dtype == np.float16 and cached.shape == (5, 24, 24, 1)
    np.testing.assert_allclose(cached.astype(np.float32), reference, atol=1e-3)


def test_class_weights_only_for_clear_imbalance() -> None:
    assert balanced_class_weight(np.array([0] * 50 + [1] * 60)) is None
    weights = balanced_class_weight(np.array([0] * 20 + [1] * 80))
    assert weights == {0: 2.5, 1: 0.625}
    batches = list(make_dataset(np.zeros((100, 4, 4, 1), np.float16),
                                np.array([0] * 20 + [1] * 80), 100, class_weight=weights))
    pixels, labels, sample_weights = batches[0]
    assert pixels.dtype == tf.float32 and labels.shape == (100, 1)
    assert float(tf.reduce_sum(sample_weights)) == 100.0  # the weights keep the loss scale


def _fit(seed: int, run_dir: Path) -> tuple[list[np.ndarray], dict[str, list[float]]]:
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 12)
    pixels = (rng.random((24, 16, 16, 1)) * 0.5 + labels[:, None, None, None] * 0.3).astype(
        np.float16)
    config = TrainingConfig(architecture="compact", epochs=2, batch_size=8, patience=5,
                            seed=seed, image_size=16)
    result = fit_model(config, pixels[:16], labels[:16], pixels[16:], labels[16:], run_dir)
    assert result.epochs_run == 2 and 1 <= result.best_epoch <= 2
    assert (run_dir / "history.csv").is_file()
    assert (run_dir / "checkpoints" / "best.weights.h5").is_file()
    return result.model.get_weights(), result.history


def test_training_repeats_exactly_from_the_seed(tmp_path: Path) -> None:
    first_weights, first_history = _fit(3, tmp_path / "a")
    again_weights, again_history = _fit(3, tmp_path / "b")
    other_weights, _ = _fit(4, tmp_path / "c")
    assert first_history == again_history
    assert all(np.array_equal(a, b) for a, b in zip(first_weights, again_weights, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first_weights, other_weights,
                                                         strict=True))

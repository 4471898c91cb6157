"""The brain-MRI input gate: a one-class score, fitted on training slices only, that the exported
model computes beside P(tumor) so that an upload unlike the training data can be refused.

The score combines two measured signals, each expressed in units of the training slices' own
spread (0 at their median, 1 at their 99th percentile):

- **Feature distance** (Lee et al., NeurIPS 2018): the Mahalanobis distance of the network's
  activations to the training slices, class-conditional means with one shared covariance
  (Ledoit-Wolf shrinkage). The activations are the spatial means of every ReLU layer of the
  CNN, not only the penultimate one: early layers see texture and contrast, which is where
  photos, documents and noise differ most from an MRI slice (measured in docs/model-report.md).
- **Colour**: the mean chroma (max - min over R, G, B) of the decoded upload. MRI carries no
  colour; the network, which reads greyscale, cannot see it.

`brain_mri_score = -max(feature term, colour term)`: higher is more like a training slice. The
threshold is the score's quantile on the validation split that lets the target share of real
slices pass. No image other than the training split's slices is used to fit it, and none
other than the validation split's to choose its threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from sklearn.covariance import LedoitWolf

from model_contract import GATE_OUTPUT_KEY, Acceptance, InputGate, OodRefusal
from training.fitting import preprocess_images
from training.preprocessing import PreprocessConfig

logger = logging.getLogger(__name__)

METHOD = "mahalanobis-multilayer+colour"
DESCRIPTION = (
    "-max(feature term, colour term). Feature term: squared Mahalanobis distance of the "
    "spatial means of every ReLU layer's activations to the nearest class mean of the "
    "training slices (shared Ledoit-Wolf covariance). Colour term: mean chroma (max - min "
    "over R, G, B) of the decoded upload at 64x64. Each term is 0 at the training slices' "
    "median and 1 at their 99th percentile. Higher is more like a brain MRI slice."
)
DEFAULT_TARGET_ACCEPTANCE = 0.995
# Each term is scaled so that the training slices' median maps to 0 and this quantile to 1.
SPREAD_QUANTILE = 0.99
# The colour statistic is measured on the upload shrunk to this size (area averaging).
COLOUR_SIZE = 64
FEATURE_BATCH = 128
# Training slices stored as pure greyscale would give the colour term a zero spread, and one
# grey level of JPEG chroma noise would then refuse a slice: the spread is at least 1% of the
# range (the real training split's is 1.85%, so this floor does not act on it).
COLOUR_SCALE_FLOOR = 0.01


def _is_relu(layer: keras.layers.Layer) -> bool:
    """A ReLU layer, or a layer with a built-in ReLU (the seed design's convolutions)."""
    return isinstance(layer, keras.layers.ReLU) or \
        getattr(layer, "activation", None) is keras.activations.relu


def feature_model(model: keras.Model) -> keras.Model:
    """The same network with two outputs: P(tumor) [n, 1] and the gate's features [n, d].

    The features are the spatial means of every ReLU activation map, so no new weights appear
    and the exported graph runs the network once for both outputs.
    """
    maps = [layer.output for layer in model.layers
            if _is_relu(layer) and len(layer.output.shape) == 4]
    if not maps:
        raise ValueError(f"the {model.name!r} architecture has no ReLU map for the gate")
    means = [keras.ops.mean(tensor, axis=(1, 2)) for tensor in maps]
    features = means[0] if len(means) == 1 else keras.ops.concatenate(means, axis=-1)
    return keras.Model(model.inputs, [model.output, features],
                       name=f"{model.name}_with_gate_features")


def image_colour(image_bytes: tf.Tensor) -> tf.Tensor:
    """Mean chroma in [0, 1] of each encoded image [n] -> float32 [n]."""

    def colour_one(encoded: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False, dtype=tf.uint8)
        image.set_shape([None, None, 3])
        small = tf.image.resize(tf.cast(image, tf.float32), [COLOUR_SIZE, COLOUR_SIZE],
                                method="area")
        chroma = tf.reduce_max(small, axis=-1) - tf.reduce_min(small, axis=-1)
        return tf.reduce_mean(chroma) / 255.0

    return tf.map_fn(colour_one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.float32))


@dataclass(frozen=True)
class Spread:
    """Scale a statistic so that the training slices' median is 0 and SPREAD_QUANTILE is 1."""

    median: float
    scale: float

    @classmethod
    def of(cls, values: np.ndarray, floor: float = 1e-12) -> Spread:
        median = float(np.median(values))
        return cls(median, max(float(np.quantile(values, SPREAD_QUANTILE)) - median, floor))


@dataclass(frozen=True)
class FittedGate:
    """The constants the score needs, all fitted on the training split's slices."""

    class_means: np.ndarray  # [classes, d]
    precision: np.ndarray  # [d, d], inverse of the shared shrunk covariance
    distance: Spread
    colour: Spread
    fitted_on: int  # number of training slices

    def score(self, features: tf.Tensor, colour: tf.Tensor) -> tf.Tensor:
        """brain_mri_score [n] from the features [n, d] and the colour statistic [n]."""
        features = tf.cast(features, tf.float64)
        means = tf.constant(self.class_means, tf.float64)
        precision = tf.constant(self.precision, tf.float64)
        centred = features[:, tf.newaxis, :] - means[tf.newaxis, :, :]  # [n, classes, d]
        squared = tf.einsum("ncd,de,nce->nc", centred, precision, centred)
        distance = tf.reduce_min(squared, axis=-1)
        feature_term = (distance - self.distance.median) / self.distance.scale
        colour_term = (tf.cast(colour, tf.float64) - self.colour.median) / self.colour.scale
        return tf.cast(-tf.maximum(feature_term, colour_term), tf.float32)


def squared_distances(features: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row to its nearest class mean."""
    centred = features[:, np.newaxis, :] - means[np.newaxis, :, :]
    return np.asarray(np.einsum("ncd,de,nce->nc", centred, precision, centred).min(axis=1))


def fit_gate(features: np.ndarray, labels: np.ndarray, colour: np.ndarray) -> FittedGate:
    """Fit the gate on the training split's features, labels and colour statistics."""
    features = features.astype(np.float64)
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in classes])
    centred = np.concatenate([features[labels == c] - means[i] for i, c in enumerate(classes)])
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    return FittedGate(
        class_means=means,
        precision=precision,
        distance=Spread.of(squared_distances(features, means, precision)),
        colour=Spread.of(colour.astype(np.float64), COLOUR_SCALE_FLOOR),
        fitted_on=len(features),
    )


def gate_inputs(
    model: keras.Model, pixels: np.ndarray, images: Sequence[bytes]
) -> tuple[np.ndarray, np.ndarray]:
    """The features (from preprocessed pixels) and colour statistics (from the bytes) of a set
    of images, computed by the same graph functions the export uses."""
    network = tf.function(feature_model(model))
    colour_fn = tf.function(image_colour)
    features, colours = [], []
    for start in range(0, len(images), FEATURE_BATCH):
        batch = tf.constant(pixels[start : start + FEATURE_BATCH], tf.float32)
        features.append(network(batch, training=False)[1].numpy())
        encoded = tf.constant(list(images[start : start + FEATURE_BATCH]), tf.string)
        colours.append(colour_fn(encoded).numpy())
    return np.concatenate(features), np.concatenate(colours)


def fit_input_gate(
    model: keras.Model, preprocess: PreprocessConfig, images: Sequence[bytes], labels: np.ndarray
) -> FittedGate:
    """Fit the gate on the training split: its slices' pixels (the serving preprocessing),
    features and colour. Nothing else is looked at."""
    logger.info("fitting the input gate on %d training slices", len(images))
    pixels = preprocess_images(images, preprocess)
    features, colour = gate_inputs(model, pixels, images)
    return fit_gate(features, labels, colour)


def choose_gate_threshold(validation_scores: np.ndarray, target_acceptance: float) -> float:
    """The highest threshold that lets at least `target_acceptance` of validation pass."""
    if not 0.0 < target_acceptance <= 1.0:
        raise ValueError("target_acceptance must be in (0, 1]")
    if len(validation_scores) == 0:
        raise ValueError("no validation score to choose the gate's threshold on")
    ordered = np.sort(validation_scores.astype(np.float64))
    allowed_refusals = int(np.floor(len(ordered) * (1.0 - target_acceptance) + 1e-9))
    return float(ordered[min(allowed_refusals, len(ordered) - 1)])


def acceptance_rate(scores: np.ndarray, threshold: float) -> float:
    return float(np.mean(scores >= threshold)) if len(scores) else float("nan")


def gate_section(
    gate: FittedGate,
    threshold: float,
    target_acceptance: float,
    acceptance: Acceptance,
    ood_refusal: OodRefusal | None,
) -> InputGate:
    """The model card's `input_gate` section."""
    return InputGate(
        method=METHOD,
        description=DESCRIPTION,
        output_key=GATE_OUTPUT_KEY,
        threshold=threshold,
        target_acceptance=target_acceptance,
        fitted_on=(f"training split: {gate.fitted_on} brain MRI slices only (no non-MRI image "
                   "was used to fit the gate or to choose its threshold)"),
        acceptance=acceptance,
        ood_refusal=ood_refusal,
    )

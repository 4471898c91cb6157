"""The brain-MRI input gate: a one-class score, fitted on training slices only, that the exported
model computes beside P(tumor) so that an upload unlike the training data can be refused.

The score combines three measured signals, each expressed in units of the training slices' own
spread (0 at their median, 1 at their 99th percentile):

- **Feature distance** (Lee et al., NeurIPS 2018): the Mahalanobis distance of the network's
  activations to the training slices, class-conditional means with one shared covariance
  (Ledoit-Wolf shrinkage). The activations are the spatial means of every ReLU layer of the
  CNN, not only the penultimate one: early layers see texture and contrast, which is where
  photos, documents and noise differ most from an MRI slice (measured in docs/model-report.md).
- **Colour**: the 99th percentile of the chroma (max - min over R, G, B) of the upload at
  64x64. MRI carries no colour anywhere; the network, which reads greyscale, cannot see it. A
  high percentile, not the mean, so that a coloured region (a Doppler overlay) counts as much
  as an all-over tint.
- **Shape**: how far the aspect ratio of the bright part's bounding box (the head) is from the
  training slices'. The network sees that box stretched to a square, so it cannot see this.

`brain_mri_score = -max(feature term, colour term, shape term)`: higher is more like a training
slice. The threshold is the score's quantile on the validation split that lets the target share
of real slices pass. No image other than the training split's slices is used to fit it, and none
other than the validation split's to choose its threshold.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from sklearn.covariance import LedoitWolf

from model_contract import GATE_OUTPUT_KEY, Acceptance, InputGate, OodRefusal
from training.ensemble import ensemble_members, with_member_features
from training.preprocessing import PreprocessConfig, brain_box, decode, input_box, to_pixels

logger = logging.getLogger(__name__)

METHOD = "mahalanobis-multilayer+colour+shape"
DESCRIPTION = (
    "-max(feature term, colour term, shape term). Feature term: squared Mahalanobis distance "
    "of the spatial means of every ReLU layer's activations to the nearest class mean of the "
    "training slices (shared Ledoit-Wolf covariance). Colour term: 99th percentile of the "
    "chroma (max - min over R, G, B) of the upload at 64x64. Shape term: distance of the log "
    "aspect ratio of the bounding box of the pixels above 20% of the brightest to the training "
    "slices' median. Each term is 0 at the training slices' median and 1 at their 99th "
    "percentile. Higher is more like a brain MRI slice."
)
DEFAULT_TARGET_ACCEPTANCE = 0.995
# Each term is scaled so that the training slices' median maps to 0 and this quantile to 1.
SPREAD_QUANTILE = 0.99
# The colour statistic is measured on the upload shrunk to this size (area averaging); a colour
# JPEG is decoded at this fraction of its size for it first (DCT scaling, see decode_with_chroma).
COLOUR_SIZE = 64
JPEG_COLOUR_RATIO = 8
# The colour statistic: the chroma exceeded by 1% of the 64x64 pixels (its 99th percentile).
COLOUR_TOP = COLOUR_SIZE * COLOUR_SIZE // 100
# The shape term's box keeps pixels above this fraction of the brightest: twice the crop's
# (preprocessing.FOREGROUND_FRACTION), so that background noise does not widen it to the
# whole frame (at the crop's 10%, 2% of test slices with added noise (sd 10) lost their box).
SHAPE_FRACTION = 0.2
FEATURE_BATCH = 128
# Training slices stored as pure greyscale would give the colour term a zero spread, and one
# grey level of JPEG chroma noise would then refuse a slice: the spread is at least 1% of the
# range (the real training split's is about 10%, so this floor does not act on it).
COLOUR_SCALE_FLOOR = 0.01
# Likewise, training slices all of one shape would refuse any other: the aspect's spread is at
# least 5% (log units; the real training split's is about 20%).
ASPECT_SCALE_FLOOR = 0.05


def _is_relu(layer: keras.layers.Layer) -> bool:
    """A ReLU layer, or a layer with a built-in ReLU (the seed design's convolutions)."""
    return isinstance(layer, keras.layers.ReLU) or \
        getattr(layer, "activation", None) is keras.activations.relu


def feature_model(model: keras.Model) -> keras.Model:
    """The same network with two outputs: P(tumor) [n, 1] and the gate's features [n, d].

    The features are the spatial means of every ReLU activation map, so no new weights appear
    and the exported graph runs the network once for both outputs. An ensemble's second
    output is a list: each member's features, for the UnionGate.
    """
    members = ensemble_members(model)
    if members != [model]:
        # An ensemble: its P(tumor), and every member's features [n, d_k] from the same pass.
        return with_member_features(model, [feature_model(member) for member in members])
    maps = [layer.output for layer in model.layers
            if _is_relu(layer) and len(layer.output.shape) == 4]
    if not maps:
        raise ValueError(f"the {model.name!r} architecture has no ReLU map for the gate")
    means = [keras.ops.mean(tensor, axis=(1, 2)) for tensor in maps]
    features = means[0] if len(means) == 1 else keras.ops.concatenate(means, axis=-1)
    return keras.Model(model.inputs, [model.output, features],
                       name=f"{model.name}_with_gate_features")


def chroma_map(image: tf.Tensor) -> tf.Tensor:
    """[h, w, 3 or 4] uint8 -> chroma (max - min over R, G, B) [COLOUR_SIZE, COLOUR_SIZE]."""
    small = tf.image.resize(tf.cast(image[..., :3], tf.float32), [COLOUR_SIZE, COLOUR_SIZE],
                            method="area")
    return (tf.reduce_max(small, axis=-1) - tf.reduce_min(small, axis=-1)) / 255.0


def _no_chroma() -> tf.Tensor:
    return tf.zeros([COLOUR_SIZE, COLOUR_SIZE], tf.float32)


def decode_with_chroma(
    encoded: tf.Tensor, config: PreprocessConfig
) -> tuple[tf.Tensor, tf.Tensor]:
    """One encoded image -> (the decoded image the network's preprocessing crops, exactly
    `preprocessing.decode`'s; its chroma map), decoding as little as the encoding allows.

    The network reads greyscale; colour needs R, G, B. A greyscale file (JPEG with one
    component, PNG with 1 or 2 channels) is decoded once and has no chroma. A colour JPEG is
    decoded at 1/8 scale for its chroma (libjpeg's DCT scaling: a fraction of a full decode);
    a colour PNG is decoded natively once for its chroma and again as greyscale for the
    network, because only libpng's own conversion gives `decode`'s grey values exactly.
    """
    if config.channels == 3:
        image = decode(encoded, config)
        return image, chroma_map(image)

    def from_jpeg() -> tuple[tf.Tensor, tf.Tensor]:
        coloured = tf.io.extract_jpeg_shape(encoded)[2] >= 3  # header only
        chroma = tf.cond(coloured, lambda: chroma_map(tf.io.decode_jpeg(
            encoded, channels=3, ratio=JPEG_COLOUR_RATIO)), _no_chroma)
        return decode(encoded, config), chroma

    def from_other() -> tuple[tf.Tensor, tf.Tensor]:
        native = tf.io.decode_image(encoded, channels=0, expand_animations=False,
                                    dtype=tf.uint8)
        grey = tf.shape(native)[-1] <= 2  # grey, or grey + alpha
        image = tf.cond(grey, lambda: native[..., :1], lambda: decode(encoded, config))
        return image, tf.cond(grey, _no_chroma, lambda: chroma_map(native))

    image, chroma = tf.cond(tf.io.is_jpeg(encoded), from_jpeg, from_other)
    image.set_shape([None, None, config.channels])
    return image, chroma


def colour_statistic(chroma: tf.Tensor) -> tf.Tensor:
    """The colour term's statistic of one chroma map: its 99th percentile."""
    return tf.math.top_k(tf.reshape(chroma, [-1]), k=COLOUR_TOP, sorted=True).values[-1]


def head_aspect(image: tf.Tensor) -> tf.Tensor:
    """log(height / width) of the bounding box of a decoded image's pixels brighter than
    SHAPE_FRACTION of its brightest: `brain_box` on the image with the rest set to 0."""
    grey = tf.reduce_max(image, axis=-1, keepdims=True)
    level = tf.cast(tf.reduce_max(grey), tf.float32) * SHAPE_FRACTION
    box = brain_box(tf.where(tf.cast(grey, tf.float32) > level, grey, tf.zeros_like(grey)))
    return tf.math.log(tf.cast(box[1] - box[0], tf.float32) / tf.cast(box[3] - box[2], tf.float32))


GatePreprocessFn = Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]


def make_gate_preprocess_fn(config: PreprocessConfig) -> GatePreprocessFn:
    """encoded images [n] -> (pixels [n, S, S, C], equal to `make_preprocess_fn`'s; the colour
    statistic [n]; the head's aspect [n]), in one pass over the images."""
    size, channels = config.image_size, config.channels
    scalar = tf.TensorSpec([], tf.float32)

    def one(encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        image, chroma = decode_with_chroma(encoded, config)
        pixels = to_pixels(image, input_box(image, config), config)
        return pixels, colour_statistic(chroma), head_aspect(image)

    def batch(image_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        pixels, colour, aspect = tf.map_fn(one, image_bytes, fn_output_signature=(
            tf.TensorSpec([size, size, channels], tf.float32), scalar, scalar))
        return pixels, colour, aspect

    return batch


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
    aspect_centre: float  # the training slices' median head aspect (log height / width)
    aspect: Spread  # of the distance to aspect_centre
    fitted_on: int  # number of training slices

    @functools.cached_property
    def weights(self) -> tuple[tf.Variable, tf.Variable]:
        """The whitening matrix [d, d] and the whitened class means [classes, d], as variables:
        an export stores them once, not once per signature that scores (as constants would).
        The [d, d] matrix is stored in float32 (half the size on disk; the product runs in
        float64 all the same, and the threshold is chosen on scores computed the same way).
        precision = L L^T, so the squared distance to mean m is |f L - m L|^2: one [n, d] x
        [d, d] product instead of a product per class (a third of the gate's graph time)."""
        whitening = np.linalg.cholesky(self.precision)
        return (tf.Variable(whitening, trainable=False, dtype=tf.float32, name="gate_whitening"),
                tf.Variable(self.class_means @ whitening, trainable=False, dtype=tf.float64,
                            name="gate_class_means"))

    def score(self, features: tf.Tensor, colour: tf.Tensor, aspect: tf.Tensor) -> tf.Tensor:
        """brain_mri_score [n] from the features [n, d], colour statistic [n] and aspect [n]."""
        whitening, means = self.weights
        whitened = tf.matmul(tf.cast(features, tf.float64), tf.cast(whitening, tf.float64))
        centred = whitened[:, tf.newaxis, :] - means[tf.newaxis, :, :]  # [n, classes, d]
        distance = tf.reduce_min(tf.reduce_sum(tf.square(centred), axis=-1), axis=-1)
        feature_term = (distance - self.distance.median) / self.distance.scale
        colour_term = (tf.cast(colour, tf.float64) - self.colour.median) / self.colour.scale
        off_centre = tf.abs(tf.cast(aspect, tf.float64) - self.aspect_centre)
        shape_term = (off_centre - self.aspect.median) / self.aspect.scale
        return tf.cast(-tf.maximum(tf.maximum(feature_term, colour_term), shape_term), tf.float32)

    def describe_fit(self) -> str:
        return (f"training split: {self.fitted_on} brain MRI slices only (no non-MRI image was "
                "used to fit the gate or to choose its threshold)")


@dataclass(frozen=True)
class UnionGate:
    """An ensemble's gate: one FittedGate per member, each on that member's features, fitted on
    the folds it trained on and shifted by its own threshold, chosen on the fold it never saw.
    The score is the lowest shifted score, so an image passes (score >= 0) only when every
    member's gate lets it through."""

    gates: tuple[FittedGate, ...]
    thresholds: tuple[float, ...]
    held_out_scores: np.ndarray  # each development slice, by the gate of its held-out member

    def score(self, features: Sequence[tf.Tensor], colour: tf.Tensor,
              aspect: tf.Tensor) -> tf.Tensor:
        shifted = [gate.score(member_features, colour, aspect) - threshold
                   for gate, member_features, threshold
                   in zip(self.gates, features, self.thresholds, strict=True)]
        return tf.reduce_min(tf.stack(shifted), axis=0)

    @property
    def weights(self) -> tuple[tf.Variable, ...]:
        return tuple(weight for gate in self.gates for weight in gate.weights)

    def describe_fit(self) -> str:
        return (f"one gate per ensemble member ({len(self.gates)}), each fitted on the "
                f"{', '.join(str(g.fitted_on) for g in self.gates)} brain MRI slices that "
                "member trained on and thresholded on the fold it never saw; no non-MRI image "
                "was used")


Gate = FittedGate | UnionGate


def squared_distances(features: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each row to its nearest class mean."""
    centred = features[:, np.newaxis, :] - means[np.newaxis, :, :]
    return np.asarray(np.einsum("ncd,de,nce->nc", centred, precision, centred).min(axis=1))


def fit_gate(
    features: np.ndarray, labels: np.ndarray, colour: np.ndarray, aspect: np.ndarray
) -> FittedGate:
    """Fit the gate on the training split's features, labels, colour and aspect statistics."""
    features = features.astype(np.float64)
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in classes])
    centred = np.concatenate([features[labels == c] - means[i] for i, c in enumerate(classes)])
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    centre = float(np.median(aspect))
    return FittedGate(
        class_means=means,
        precision=precision,
        distance=Spread.of(squared_distances(features, means, precision)),
        colour=Spread.of(colour.astype(np.float64), COLOUR_SCALE_FLOOR),
        aspect_centre=centre,
        aspect=Spread.of(np.abs(aspect.astype(np.float64) - centre), ASPECT_SCALE_FLOOR),
        fitted_on=len(features),
    )


@dataclass(frozen=True)
class GateInputs:
    """What the score is computed from, for a set of images."""

    features: np.ndarray  # [n, d]
    colour: np.ndarray  # [n]
    aspect: np.ndarray  # [n]


def gate_inputs(
    model: keras.Model, preprocess: PreprocessConfig, images: Sequence[bytes]
) -> GateInputs:
    """The gate's inputs for a set of images, from their bytes, computed by the very graph
    functions the export runs."""
    network = tf.function(feature_model(model))
    inputs_fn = tf.function(make_gate_preprocess_fn(preprocess))
    parts: list[list[np.ndarray]] = [[], [], []]
    for start in range(0, len(images), FEATURE_BATCH):
        pixels, colour, aspect = inputs_fn(tf.constant(list(images[start : start + FEATURE_BATCH])))
        for part, value in zip(parts, (network(pixels, training=False)[1], colour, aspect),
                               strict=True):
            part.append(value.numpy())
    return GateInputs(*(np.concatenate(part) for part in parts))


def fit_input_gate(
    model: keras.Model, preprocess: PreprocessConfig, images: Sequence[bytes], labels: np.ndarray
) -> FittedGate:
    """Fit the gate on the training split: its slices' features, colour and shape, through
    the serving preprocessing. Nothing else is looked at."""
    logger.info("fitting the input gate on %d training slices", len(images))
    inputs = gate_inputs(model, preprocess, images)
    return fit_gate(inputs.features, labels, inputs.colour, inputs.aspect)


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
    gate: Gate,
    threshold: float,
    target_acceptance: float,
    acceptance: Acceptance,
    ood_refusal: OodRefusal | None,
) -> InputGate:
    """The model card's `input_gate` section."""
    return InputGate(
        method=METHOD if isinstance(gate, FittedGate) else f"{METHOD}, all of {len(gate.gates)}",
        description=DESCRIPTION,
        output_key=GATE_OUTPUT_KEY,
        threshold=threshold,
        target_acceptance=target_acceptance,
        fitted_on=gate.describe_fit(),
        acceptance=acceptance,
        ood_refusal=ood_refusal,
    )

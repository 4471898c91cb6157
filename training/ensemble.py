"""The fold models averaged in one Keras model, with the calibration applied inside it.

    pixels -> every member (and, with flip TTA, every member on the mirrored slice)
           -> logit of each P(tumor) -> mean -> / temperature + intercept -> sigmoid

Averaging logits (not probabilities) keeps the ensemble's scores on the scale of a single
member's, which is what the temperature was fitted on (the members' out-of-fold predictions).
The members stay reachable by name (`member-1` ... `member-K`, see `ensemble_members`) so a
Grad-CAM or a feature-based input gate can use one member or average over all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from model_contract import OUTPUT_KEY

MEMBER_PREFIX = "member-"
MIRROR_LAYER = "mirrored"  # the flip-TTA view's layer
# P(tumor) is clipped to [EPS, 1 - EPS] before the logit: float32 sigmoids saturate at 1.
PROBABILITY_EPS = 1e-6


def logit(probabilities: np.ndarray) -> np.ndarray:
    """The logit of float32 probabilities, clipped as the graph clips them."""
    p = np.clip(np.asarray(probabilities, dtype=np.float32), PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    return np.log(p.astype(np.float64)) - np.log1p(-p.astype(np.float64))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64))))


@keras.saving.register_keras_serializable(package="brain_mri")
class MirrorLeftRight(layers.Layer):  # type: ignore[misc]
    """The slice mirrored left-right (axis 2 of [n, h, w, c])."""

    def call(self, inputs: Any) -> Any:
        return keras.ops.flip(inputs, axis=2)


@keras.saving.register_keras_serializable(package="brain_mri")
class Logit(layers.Layer):  # type: ignore[misc]
    """log(p / (1 - p)) with p clipped to [PROBABILITY_EPS, 1 - PROBABILITY_EPS]."""

    def call(self, inputs: Any) -> Any:
        p = keras.ops.clip(inputs, PROBABILITY_EPS, 1.0 - PROBABILITY_EPS)
        return keras.ops.log(p) - keras.ops.log1p(-p)


@keras.saving.register_keras_serializable(package="brain_mri")
class CalibratedSigmoid(layers.Layer):  # type: ignore[misc]
    """sigmoid(logit / temperature + intercept): Platt scaling of the mean logit, fitted on
    out-of-fold predictions (calibration.py)."""

    def __init__(self, temperature: float = 1.0, intercept: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.temperature = float(temperature)
        self.intercept = float(intercept)

    def call(self, inputs: Any) -> Any:
        return keras.ops.sigmoid(inputs / self.temperature + self.intercept)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature,
                "intercept": self.intercept}


def build_ensemble(members: Sequence[keras.Model], temperature: float, flip_tta: bool,
                   intercept: float = 0.0) -> keras.Model:
    """One model: pixels in, calibrated mean P(tumor) out (shape [n, 1])."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    for index, member in enumerate(members):
        member.name = f"{MEMBER_PREFIX}{index + 1}"  # unique names inside the ensemble
    inputs, output, _ = _graph(members, CalibratedSigmoid(temperature, intercept, name=OUTPUT_KEY),
                               flip_tta)
    return keras.Model(inputs, output, name="ensemble")


def with_member_features(ensemble: keras.Model,
                         with_features: Sequence[keras.Model]) -> keras.Model:
    """The ensemble with a second output: the list of each member's features, where
    `with_features[k]` is member k with an extra output (pixels -> [P(tumor), features],
    input_gate.feature_model). They stand in for the members on the unmirrored slice, so each
    network still runs once per view."""
    inputs, output, features = _graph(ensemble_members(ensemble), ensemble.get_layer(OUTPUT_KEY),
                                      has_mirror_view(ensemble), with_features)
    return keras.Model(inputs, [output, features], name=f"{ensemble.name}_with_gate_features")


def _graph(members: Sequence[keras.Model], calibration: layers.Layer, flip_tta: bool,
           with_features: Sequence[keras.Model] = ()) -> tuple[Any, Any, list[Any]]:
    shape = tuple(int(d) for d in members[0].input_shape[1:])
    inputs = keras.Input(shape, name="pixels")
    views = [inputs, MirrorLeftRight(name=MIRROR_LAYER)(inputs)] if flip_tta else [inputs]
    logit_layer = Logit(name="member_logits")
    logits: list[Any] = []
    features: list[Any] = []
    for index, member in enumerate(members):
        for view in views:
            if with_features and view is inputs:
                probability, member_features = with_features[index](view)
                features.append(member_features)
            else:
                probability = member(view)
            logits.append(logit_layer(probability))
    mean = logits[0] if len(logits) == 1 else layers.Average(name="mean_logit")(logits)
    return inputs, calibration(mean), features


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The member networks of an ensemble built here, in order; [model] for a single network."""
    members = [layer for layer in model.layers if layer.name.startswith(MEMBER_PREFIX)]
    return members or [model]


def has_mirror_view(model: keras.Model) -> bool:
    """Whether an ensemble built here averages over the mirrored slice too (flip TTA)."""
    return any(layer.name == MIRROR_LAYER for layer in model.layers)


def calibrated_mean(ensemble: keras.Model, probabilities: Sequence[Any]) -> Any:
    """The ensemble's output from its members' P(tumor) on every view, as its graph computes
    it (for a caller that already ran the members)."""
    logit_layer = Logit()
    mean = tf.add_n([logit_layer(p) for p in probabilities]) / float(len(probabilities))
    return ensemble.get_layer(OUTPUT_KEY)(mean)


def mean_logit(per_view_scores: Sequence[np.ndarray]) -> np.ndarray:
    """Numpy twin of the graph: the mean logit of several P(tumor) arrays of one set of slices."""
    return np.asarray(np.mean([logit(s) for s in per_view_scores], axis=0))

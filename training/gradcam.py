"""Grad-CAM (Selvaraju et al., ICCV 2017) inside the exported graph: the `explain` signature.

For one encoded image it returns P(tumor) and a heatmap of the evidence for `tumor` on the
decoded image's own pixel grid. The heatmap is computed on the last convolution stage (the
gradient of the tumor logit, averaged over positions, weights each channel), then mapped back
through the preprocessing from preprocessing.py: resized from the feature grid onto the
crop-to-brain box and placed in the full image, 0 outside the box, scaled so its maximum is 1.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from model_contract import GATE_OUTPUT_KEY, HEATMAP_KEY, OUTPUT_KEY, ExplainSpec
from training.preprocessing import PreprocessConfig, decode, input_box, to_pixels

# image_bytes [N] tf.string -> score [N] float32: the input gate's scoring graph, if any.
GateScore = Callable[[tf.Tensor], tf.Tensor]


def last_conv_layer(model: keras.Model) -> keras.layers.Layer:
    """The last layer with a spatial (4-D) output: the end of the last convolution stage."""
    for layer in reversed(model.layers):
        if len(layer.output.shape) == 4:
            return layer
    raise ValueError(f"model {model.name!r} has no layer with a spatial output")


def _tumor_head(model: keras.Model) -> keras.layers.Dense:
    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense) or head.units != 1:
        raise ValueError("Grad-CAM needs a model ending in one Dense unit (the tumor logit)")
    if head.activation is not keras.activations.sigmoid:
        raise ValueError("the model's last layer must apply a sigmoid to the tumor logit")
    return head


def _to_image_grid(cam: tf.Tensor, box: tf.Tensor, image_shape: tf.Tensor) -> tf.Tensor:
    """Feature-grid map [h, w] -> [H, W]: resized onto the box, zero around it, max 1."""
    box_height, box_width = box[1] - box[0], box[3] - box[2]
    evidence = tf.nn.relu(cam)[..., None]  # Grad-CAM keeps positive evidence only
    resized = tf.image.resize(evidence, tf.stack([box_height, box_width]), "bilinear")
    padded = tf.pad(
        resized[..., 0],
        [[box[0], image_shape[0] - box[1]], [box[2], image_shape[1] - box[3]]],
    )
    return tf.clip_by_value(tf.math.divide_no_nan(padded, tf.reduce_max(padded)), 0.0, 1.0)


def make_explain_fn(
    model: keras.Model,
    config: PreprocessConfig,
    layer_name: str | None = None,
    gate_score: GateScore | None = None,
) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """Build `explain(image_bytes scalar) -> {tumor_probability [], heatmap [H, W]}`.

    `layer_name` defaults to `last_conv_layer(model)`. `gate_score`, when the model has an
    input gate, is the same scoring graph its `serving_default` uses; its score is then
    returned as `brain_mri_score` [] as well.
    """
    layer = model.get_layer(layer_name) if layer_name else last_conv_layer(model)
    head = _tumor_head(model)
    # One forward pass gives the feature maps, the head's input and P(tumor) itself, so the
    # probability is the model's own output, not a recomputation from the logit.
    probe = keras.Model(model.inputs, [layer.output, head.input, model.output])

    def explain(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        image = decode(image_bytes, config)
        box = input_box(image, config)
        pixels = to_pixels(image, box, config)[None]
        with tf.GradientTape() as tape:
            tape.watch(pixels)  # records the pass even if every variable were frozen
            features, penultimate, probability = probe(pixels, training=False)
            logit = tf.matmul(penultimate, head.kernel) + head.bias
        gradients = tape.gradient(logit, features)
        channel_weights = tf.reduce_mean(gradients, axis=[1, 2], keepdims=True)
        cam = tf.reduce_sum(features * channel_weights, axis=-1)[0]
        outputs = {
            OUTPUT_KEY: tf.reshape(probability, []),
            HEATMAP_KEY: _to_image_grid(cam, box, tf.shape(image)),
        }
        if gate_score is not None:
            outputs[GATE_OUTPUT_KEY] = tf.reshape(gate_score(tf.reshape(image_bytes, [1])), [])
        return outputs

    return explain


def explain_spec(model: keras.Model, layer_name: str | None = None) -> ExplainSpec:
    """The model card's `explain` section."""
    layer = model.get_layer(layer_name) if layer_name else last_conv_layer(model)
    return ExplainSpec(layer=layer.name)

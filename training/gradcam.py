"""Grad-CAM (Selvaraju et al., ICCV 2017) inside the exported graph: the `explain` signature.

For one encoded image it returns P(tumor) and a heatmap of the evidence for `tumor` on the
decoded image's own pixel grid. The heatmap is computed at the end of one convolution stage
(`default_layers`; the gradient of the tumor logit, averaged over positions, weights each
channel), then mapped back through the preprocessing from preprocessing.py: resized from the
feature grid onto the crop-to-brain box and placed in the full image, 0 outside the box, scaled
so its maximum is 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from model_contract import GATE_OUTPUT_KEY, HEATMAP_KEY, OUTPUT_KEY, ExplainSpec
from training.ensemble import calibrated_mean, ensemble_members, has_mirror_view
from training.preprocessing import PreprocessConfig, decode, input_box, to_pixels

CONVOLUTIONS = (
    keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D
)
# image_bytes [N] tf.string -> score [N] float32: the input gate's scoring graph, if any.
GateScore = Callable[[tf.Tensor], tf.Tensor]


def stage_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The end of each convolution stage: for every spatial grid size from the first
    convolution on, the last layer with a 4-D output of that size, in the network's order."""
    last_of_size: dict[tuple[int, int], keras.layers.Layer] = {}
    convolved = False  # layers before the first convolution (input, augmentation) are no stage
    for layer in model.layers:
        convolved = convolved or isinstance(layer, CONVOLUTIONS)
        shape = layer.output.shape
        if convolved and len(shape) == 4:
            last_of_size.pop((shape[1], shape[2]), None)  # keep the dict in network order
            last_of_size[(shape[1], shape[2])] = layer
    if not last_of_size:
        raise ValueError(f"model {model.name!r} has no convolution stage")
    return list(last_of_size.values())


def _tumor_head(model: keras.Model) -> keras.layers.Dense:
    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense) or head.units != 1:
        raise ValueError("Grad-CAM needs a model ending in one Dense unit (the tumor logit)")
    if head.activation is not keras.activations.sigmoid:
        raise ValueError("the model's last layer must apply a sigmoid to the tumor logit")
    return head


def _on_box(cam: tf.Tensor, box_size: tf.Tensor) -> tf.Tensor:
    """One feature-grid map [h, w] -> its positive part resized onto the box, max 1."""
    evidence = tf.nn.relu(cam)[..., None]  # Grad-CAM keeps positive evidence only
    resized = tf.image.resize(evidence, box_size, "bilinear")[..., 0]
    return tf.math.divide_no_nan(resized, tf.reduce_max(resized))


def heat_on_image(cams: Sequence[tf.Tensor], box: tf.Tensor, image_shape: tf.Tensor) -> tf.Tensor:
    """Feature-grid maps [h, w] -> one [H, W] heatmap: each resized onto the box and scaled to
    a maximum of 1, averaged, zero around the box, scaled to a maximum of 1."""
    box_size = tf.stack([box[1] - box[0], box[3] - box[2]])
    mean = tf.add_n([_on_box(cam, box_size) for cam in cams]) / float(len(cams))
    padded = tf.pad(mean, [[box[0], image_shape[0] - box[1]], [box[2], image_shape[1] - box[3]]])
    return tf.clip_by_value(tf.math.divide_no_nan(padded, tf.reduce_max(padded)), 0.0, 1.0)


class GradCam:
    """Grad-CAM of the tumor logit at the given layers, from one forward and backward pass.

    For an ensemble (ensemble.py), every member's map on every view it sees (the slice and,
    with flip TTA, its mirror image, whose map is mirrored back) is one map of the result, so
    the heatmap averages the evidence of everything the exported prediction averages."""

    def __init__(self, model: keras.Model, layer_names: Sequence[str] | None = None) -> None:
        members = ensemble_members(model)
        self.ensemble = None if members == [model] else model
        self.flip = self.ensemble is not None and has_mirror_view(model)
        self.heads = [_tumor_head(member) for member in members]
        # One forward pass per member gives the feature maps, the head's input and P(tumor)
        # itself, so a single network's probability is its own output, not a recomputation.
        self.probes = [
            keras.Model(member.inputs, [
                [member.get_layer(name).output
                 for name in (layer_names if self.ensemble is None and layer_names
                              else default_layers(member))],
                head.input, member.output,
            ])
            for member, head in zip(members, self.heads, strict=True)
        ]

    def __call__(self, pixels: tf.Tensor) -> tuple[list[tf.Tensor], tf.Tensor]:
        """pixels [1, S, S, C] -> (one map [h, w] per layer, member and view; P(tumor) [1, 1])."""
        views = [(pixels, False)] + ([(tf.reverse(pixels, axis=[2]), True)] if self.flip else [])
        maps: list[tuple[tf.Tensor, bool]] = []
        with tf.GradientTape() as tape:
            tape.watch(pixels)  # records the pass even if every variable were frozen
            logits, probabilities = [], []
            for probe, head in zip(self.probes, self.heads, strict=True):
                for view, mirrored in views:
                    features, penultimate, probability = probe(view, training=False)
                    maps.extend((feature, mirrored) for feature in features)
                    logits.append(tf.matmul(penultimate, head.kernel) + head.bias)
                    probabilities.append(probability)
            # Each map's gradient is its own member's logit's: the members share no tensor.
            total = tf.add_n(logits)
        gradients = tape.gradient(total, [feature for feature, _ in maps])
        cams = []
        for (feature, mirrored), gradient in zip(maps, gradients, strict=True):
            channel_weights = tf.reduce_mean(gradient, axis=[1, 2], keepdims=True)
            cam = tf.reduce_sum(feature * channel_weights, axis=-1)[0]
            cams.append(tf.reverse(cam, axis=[1]) if mirrored else cam)
        if self.ensemble is not None:  # from the passes above, not a second forward pass
            probability = calibrated_mean(self.ensemble, probabilities)
        return cams, probability


def default_layers(model: keras.Model) -> list[str]:
    """The layer the exported heatmap is taken at: the end of the first convolution stage (for
    the compact CNN, the 64 x 64 grid at 128 px input). Chosen on the validation split's deletion
    test among every stage and averages of stages: docs/model-report.md#explanations-grad-cam."""
    return [stage_layers(model)[0].name]


def make_explain_fn(
    model: keras.Model,
    config: PreprocessConfig,
    layer_names: Sequence[str] | None = None,
    gate_score: GateScore | None = None,
) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """Build `explain(image_bytes scalar) -> {tumor_probability [], heatmap [H, W]}`.

    `layer_names` defaults to `default_layers(model)` (an ensemble: each member's own, see
    GradCam); with several, their Grad-CAMs are
    averaged (each scaled to a maximum of 1 first). `gate_score`, when the model has an input
    gate, is the same scoring graph its `serving_default` uses; its score is then returned as
    `brain_mri_score` [] as well.
    """
    grad_cam = GradCam(model, layer_names)

    def explain(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        image = decode(image_bytes, config)
        box = input_box(image, config)
        cams, probability = grad_cam(to_pixels(image, box, config)[None])
        outputs = {
            OUTPUT_KEY: tf.reshape(probability, []),
            HEATMAP_KEY: heat_on_image(cams, box, tf.shape(image)),
        }
        if gate_score is not None:
            outputs[GATE_OUTPUT_KEY] = tf.reshape(gate_score(tf.reshape(image_bytes, [1])), [])
        return outputs

    return explain


def explain_spec(model: keras.Model, layer_names: Sequence[str] | None = None) -> ExplainSpec:
    """The model card's `explain` section."""
    members = ensemble_members(model)
    if members == [model]:
        return ExplainSpec(layer=", ".join(layer_names or default_layers(model)))
    views = "the slice and its mirror image" if has_mirror_view(model) else "the slice"
    first = ", ".join(default_layers(members[0]))
    return ExplainSpec(layer=f"{first} (end of the first stage) of each of the {len(members)} "
                             f"ensemble members, on {views}, averaged")

"""The CNN architectures: the seed project's design, kept for comparison, and our default.

Every model takes preprocessed pixels ([S, S, C] floats in [0, 1], see preprocessing.py) and
returns P(tumor) from one sigmoid unit. Augmentation layers sit inside the model, so they act
during `fit` only and the exported graph needs no copy of them.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from model_contract import OUTPUT_KEY
from training.preprocessing import PreprocessConfig


def augmentation(seed: int) -> keras.Sequential:
    """Changes an MRI slice plausibly undergoes between scanners and protocols.

    Left-right flips (brains are near-symmetric and tumours occur on both sides), small
    rotations, shifts and zooms (head position), and brightness/contrast changes (windowing
    and scanner gain). No vertical flips: an upside-down slice is not a realistic input.
    """
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.04, fill_mode="constant", seed=seed + 1),
            layers.RandomTranslation(0.05, 0.05, fill_mode="constant", seed=seed + 2),
            layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 3),
            layers.RandomContrast(0.2, seed=seed + 4),
            layers.RandomBrightness(0.1, value_range=(0.0, 1.0), seed=seed + 5),
        ],
        name="augmentation",
    )


def build_seed(config: PreprocessConfig, seed: int, augment: bool = True) -> keras.Model:
    """The seed project's CNN, exactly: Conv 32 and 64 (3x3, ReLU), 2x2 pooling, Dense 512."""
    size = config.image_size
    inputs = keras.Input((size, size, config.channels), name="pixels")
    x = augmentation(seed)(inputs) if augment else inputs
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu")(x)
    outputs = layers.Dense(1, activation="sigmoid", name=OUTPUT_KEY)(x)
    return keras.Model(inputs, outputs, name="seed")


def _conv_bn(
    x: keras.KerasTensor, filters: int, separable: bool, strides: int = 1
) -> keras.KerasTensor:
    conv = layers.SeparableConv2D if separable else layers.Conv2D
    x = conv(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    # momentum 0.9, not 0.99: with ~80 steps an epoch the default leaves the moving statistics
    # far from the batch ones for several epochs, and evaluation-mode outputs collapse.
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.ReLU()(x)


def build_compact(
    config: PreprocessConfig, seed: int, augment: bool = True, width: int = 32, dropout: float = 0.3
) -> keras.Model:
    """Our default: a small depthwise-separable CNN with batch norm and global pooling.

    A strided stem, then three stages of two separable 3x3 convolutions each followed by 2x2
    pooling (width, 2x width, 4x width channels), global average pooling and one sigmoid unit.
    Global pooling instead of Flatten + Dense 512 removes the seed's 42 M-parameter dense layer,
    which is where its over-fitting and its size come from.
    """
    size = config.image_size
    inputs = keras.Input((size, size, config.channels), name="pixels")
    x = augmentation(seed)(inputs) if augment else inputs
    x = _conv_bn(x, width // 2, separable=False, strides=2)
    for multiple in (1, 2, 4):
        x = _conv_bn(x, width * multiple, separable=True)
        x = _conv_bn(x, width * multiple, separable=True)
        x = layers.MaxPooling2D(2)(x)
    x = _conv_bn(x, width * 4, separable=True)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout, seed=seed)(x)
    outputs = layers.Dense(1, activation="sigmoid", name=OUTPUT_KEY)(x)
    return keras.Model(inputs, outputs, name="compact")


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "seed": build_seed,
    "compact": build_compact,
}

# Each architecture's own input: the seed read 150x150 RGB stretched images; ours reads
# greyscale slices cropped to the brain (MRI carries no colour; cropping removes borders and
# aspect-ratio cues that identify the file's source rather than the anatomy).
DEFAULT_PREPROCESS: dict[str, PreprocessConfig] = {
    "seed": PreprocessConfig(image_size=150, channels=3, crop_to_brain=False),
    "compact": PreprocessConfig(image_size=128, channels=1, crop_to_brain=True),
}


def default_preprocess(name: str) -> PreprocessConfig:
    return DEFAULT_PREPROCESS[name]


def build_model(
    name: str, config: PreprocessConfig, seed: int, augment: bool = True, width: int | None = None
) -> keras.Model:
    if name not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {name!r}; choose one of: {known}")
    if width is None:
        return ARCHITECTURES[name](config, seed=seed, augment=augment)
    if name != "compact":
        raise ValueError(f"the {name!r} architecture has a fixed width")
    return build_compact(config, seed=seed, augment=augment, width=width)


def count_parameters(model: keras.Model) -> int:
    return int(model.count_params())


def _layer_flops(layer: layers.Layer) -> int:
    """Multiply-adds x 2 of one layer's forward pass for a single image."""
    if isinstance(layer, layers.SeparableConv2D | layers.Conv2D | layers.DepthwiseConv2D):
        in_channels = int(layer.input.shape[-1])
        out_h, out_w, out_channels = (int(d) for d in layer.output.shape[1:])
        kernel_h, kernel_w = (int(k) for k in layer.kernel_size)
        positions = out_h * out_w
        if isinstance(layer, layers.SeparableConv2D):
            depthwise = positions * kernel_h * kernel_w * in_channels
            pointwise = positions * in_channels * out_channels
            return 2 * (depthwise + pointwise)
        if isinstance(layer, layers.DepthwiseConv2D):
            return 2 * positions * kernel_h * kernel_w * in_channels
        return 2 * positions * kernel_h * kernel_w * in_channels * out_channels
    if isinstance(layer, layers.Dense):
        return 2 * int(layer.input.shape[-1]) * int(layer.units)
    return 0


def count_flops(model: keras.Model) -> int:
    """FLOPs per image of the convolutions and dense layers (normalisation, activations and
    pooling add under 2% here and are left out)."""
    return sum(_layer_flops(layer) for layer in model.layers)

"""The image preprocessing graph shared by training and the exported serving signature.

Training caches the output of `make_preprocess_fn` once per file; the export wraps the very
same function around the model, so serving sees exactly what training saw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import tensorflow as tf

# A pixel belongs to the brain (not the black background) when it is brighter than this
# fraction of the slice's brightest pixel; rows and columns count only when at least
# MIN_LINE_FRACTION of their pixels do, so a burnt-in text label does not widen the box.
FOREGROUND_FRACTION = 0.1
MIN_LINE_FRACTION = 0.02


@dataclass(frozen=True)
class PreprocessConfig:
    image_size: int
    channels: int
    crop_to_brain: bool

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError("channels must be 1 (greyscale) or 3 (RGB)")
        if self.image_size < 8:
            raise ValueError("image_size must be at least 8 pixels")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def brain_box(image: tf.Tensor) -> tf.Tensor:
    """[top, bottom, left, right] (int32, bottom and right exclusive) of the bounding box of a
    [h, w, c] uint8 image's bright (brain) pixels; the whole image when none qualifies."""
    grey = tf.reduce_max(image, axis=-1)
    threshold = tf.cast(tf.reduce_max(grey), tf.float32) * FOREGROUND_FRACTION
    mask = tf.cast(grey, tf.float32) > threshold
    shape = tf.shape(grey)
    row_hits = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    col_hits = tf.reduce_sum(tf.cast(mask, tf.int32), axis=0)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    min_row_hits = tf.maximum(1, tf.cast(width * MIN_LINE_FRACTION, tf.int32))
    min_col_hits = tf.maximum(1, tf.cast(height * MIN_LINE_FRACTION, tf.int32))
    rows = tf.cast(tf.where(row_hits >= min_row_hits)[:, 0], tf.int32)
    cols = tf.cast(tf.where(col_hits >= min_col_hits)[:, 0], tf.int32)

    def box() -> tf.Tensor:
        return tf.stack([
            tf.reduce_min(rows), tf.reduce_max(rows) + 1,
            tf.reduce_min(cols), tf.reduce_max(cols) + 1,
        ])

    has_box = tf.logical_and(tf.size(rows) > 0, tf.size(cols) > 0)
    return tf.cond(has_box, box, lambda: tf.stack([0, shape[0], 0, shape[1]]))


def decode(image_bytes: tf.Tensor, config: PreprocessConfig) -> tf.Tensor:
    """One encoded image (scalar string) -> [h, w, C] uint8, at the config's channel count."""
    image = tf.io.decode_image(
        image_bytes, channels=config.channels, expand_animations=False, dtype=tf.uint8
    )
    image.set_shape([None, None, config.channels])
    return image


def input_box(image: tf.Tensor, config: PreprocessConfig) -> tf.Tensor:
    """The part of a decoded image the network sees: the brain's box, or the whole image."""
    if config.crop_to_brain:
        return brain_box(image)
    shape = tf.shape(image)
    return tf.stack([0, shape[0], 0, shape[1]])


def to_pixels(image: tf.Tensor, box: tf.Tensor, config: PreprocessConfig) -> tf.Tensor:
    """Crop a decoded image to `box`, stretch it to S x S and scale it to [0, 1]."""
    size = config.image_size
    cropped = image[box[0] : box[1], box[2] : box[3], :]
    resized = tf.image.resize(
        tf.cast(cropped, tf.float32), [size, size], method="bilinear", antialias=True
    )
    return tf.clip_by_value(resized / 255.0, 0.0, 1.0)


def make_preprocess_fn(config: PreprocessConfig) -> Callable[[tf.Tensor], tf.Tensor]:
    """Build `preprocess_batch`: encoded image strings [n] -> float32 [n, S, S, C] in [0, 1].

    Decoding happens at 8 bits with TensorFlow (PNG, JPEG, BMP); the image is optionally
    cropped to the brain's bounding box, then stretched to S x S, so neither the file's
    borders nor its aspect ratio reach the network.
    """
    size = config.image_size

    def preprocess_one(image_bytes: tf.Tensor) -> tf.Tensor:
        image = decode(image_bytes, config)
        return to_pixels(image, input_box(image, config), config)

    def preprocess_batch(image_bytes: tf.Tensor) -> tf.Tensor:
        return tf.map_fn(
            preprocess_one,
            image_bytes,
            fn_output_signature=tf.TensorSpec([size, size, config.channels], tf.float32),
        )

    return preprocess_batch

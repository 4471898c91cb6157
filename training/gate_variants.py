"""`python -m training.gate_variants`: the input-gate designs we compared, side by side on one
finished run (docs/model-report.md, "The brain-MRI input gate").

Every variant is fitted on the run's training split only, its threshold chosen on validation
(99.5% pass), and measured on the test split, on the OOD set by kind, and on the test split
changed the way another scanner or export might change it (gamma, contrast, noise, JPEG,
resolution, blur, padding, cropping, rotation, a colour tint): a stand-in for brain MRI from
other sources, which must still pass. The OOD set only measures; nothing is tuned on it.

    python -m training.gate_variants --data DATA --run-dir RUN --ood OOD
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageFilter

from model_contract import canonical_bytes
from training.discovery import resolve_classes, scan_images
from training.fitting import TrainingConfig, load_finished_fit, preprocess_images
from training.gate_evaluation import read_ood_set
from training.input_gate import (
    choose_gate_threshold,
    chroma_map,
    fit_gate,
    gate_inputs,
    squared_distances,
)
from training.ood_set import FAR_OOD_KINDS, NEAR_OOD_KINDS
from training.splitting import read_manifest

TARGET = 0.995
Shift = Callable[[Image.Image], Image.Image]


def _grey_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), np.float64)


def _from_array(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8))


def _pad(image: Image.Image) -> Image.Image:
    grey = image.convert("L")
    canvas = Image.new("L", (grey.width * 3 // 2, grey.height * 3 // 2), 0)
    canvas.paste(grey, (grey.width // 4, grey.height // 4))
    return canvas


def _jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("L").save(buffer, format="JPEG", quality=25)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _sepia(image: Image.Image) -> Image.Image:
    grey = _grey_array(image)
    return Image.fromarray(np.stack([grey, grey * 0.85, grey * 0.65], -1).astype(np.uint8))


SHIFTS: dict[str, Shift] = {
    "gamma 0.6": lambda im: _from_array(255 * (_grey_array(im) / 255) ** 0.6),
    "gamma 1.6": lambda im: _from_array(255 * (_grey_array(im) / 255) ** 1.6),
    "contrast x0.6": lambda im: _from_array(0.6 * _grey_array(im) + 0.4 * _grey_array(im).mean()),
    "noise sd 10": lambda im: _from_array(
        _grey_array(im) + np.random.default_rng(0).normal(0, 10, _grey_array(im).shape)),
    "JPEG q25": _jpeg,
    "96 px and back": lambda im: im.convert("L").resize((96, 96)).resize(im.size),
    "blur 2 px": lambda im: im.convert("L").filter(ImageFilter.GaussianBlur(2)),
    "padded 25%": _pad,
    "cropped 10%": lambda im: im.convert("L").crop(
        (im.width // 10, im.height // 10, im.width - im.width // 10, im.height - im.height // 10)),
    "rotated 10°": lambda im: im.convert("L").rotate(10, resample=Image.Resampling.BILINEAR),
    "sepia tint": _sepia,
}


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _penultimate(model: keras.Model, pixels: np.ndarray) -> np.ndarray:
    """The input of the last (sigmoid) layer: the network's penultimate features."""
    network = keras.Model(model.inputs, model.layers[-1].input)
    return np.concatenate([np.asarray(network(pixels[i : i + 128].astype(np.float32),
                                              training=False))
                           for i in range(0, len(pixels), 128)])


def _mean_chroma(encoded: tf.Tensor) -> tf.Tensor:
    """The previous colour statistic: mean chroma of the full decode at 64x64."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    return tf.reduce_mean(chroma_map(image))


_mean_chroma_batch = tf.function(lambda images: tf.map_fn(
    _mean_chroma, images, fn_output_signature=tf.TensorSpec([], tf.float32)))


class Inputs:
    """Multi-layer features, penultimate features, colour and shape of a set of images."""

    def __init__(self, model: keras.Model, images: Sequence[bytes]) -> None:
        preprocess = TrainingConfig().preprocess()
        gate = gate_inputs(model, preprocess, images)
        self.multilayer, self.colour, self.aspect = gate.features, gate.colour, gate.aspect
        self.penultimate = _penultimate(model, preprocess_images(images, preprocess))
        self.mean_colour = np.concatenate([
            _mean_chroma_batch(tf.constant(list(images[i : i + 128]))).numpy()
            for i in range(0, len(images), 128)])


def _scorer(train: Inputs, labels: np.ndarray, variant: Variant
            ) -> Callable[[Inputs], np.ndarray]:
    features, colour, shape = variant
    gate = fit_gate(getattr(train, features), labels, getattr(train, colour or "colour"),
                    train.aspect)

    def score(inputs: Inputs) -> np.ndarray:
        distance = squared_distances(getattr(inputs, features).astype(np.float64),
                                     gate.class_means, gate.precision)
        term = (distance - gate.distance.median) / gate.distance.scale
        if colour:
            term = np.maximum(term, (getattr(inputs, colour) - gate.colour.median)
                              / gate.colour.scale)
        if shape:
            off_centre = np.abs(inputs.aspect - gate.aspect_centre)
            term = np.maximum(term, (off_centre - gate.aspect.median) / gate.aspect.scale)
        return np.asarray(-term)

    return score


# name -> (features, colour statistic or None, shape term)
Variant = tuple[str, str | None, bool]
VARIANTS: dict[str, Variant] = {
    "penultimate (Lee et al.)": ("penultimate", None, False),
    "penultimate + mean chroma": ("penultimate", "mean_colour", False),
    "every ReLU layer": ("multilayer", None, False),
    "every ReLU layer + mean chroma (previous)": ("multilayer", "mean_colour", False),
    "every ReLU layer + p99 chroma": ("multilayer", "colour", False),
    "every ReLU layer + shape": ("multilayer", None, True),
    "every ReLU layer + p99 chroma + shape (shipped)": ("multilayer", "colour", True),
}


def _split_images(data: Path, run_dir: Path) -> dict[str, tuple[list[bytes], np.ndarray]]:
    records = {r.path: r for r in scan_images(resolve_classes(data)).records}
    chosen: dict[str, list[tuple[bytes, int]]] = {}
    for row in read_manifest(run_dir / "manifest.csv"):
        if row.path in records:
            chosen.setdefault(row.split, []).append((records[row.path].data,
                                                     records[row.path].label))
    return {split: ([d for d, _ in pairs], np.array([y for _, y in pairs]))
            for split, pairs in chosen.items()}


def _row(name: str, cells: Sequence[str]) -> str:
    return "| " + " | ".join([name, *cells]) + " |"


def measure(data: Path, run_dir: Path, ood_dir: Path) -> list[str]:
    """The comparison as markdown table rows (fits every variant; a few minutes)."""
    splits = _split_images(data, run_dir)
    model = load_finished_fit(TrainingConfig(), run_dir, splits["train"][1]).model
    inputs = {name: Inputs(model, images) for name, (images, _) in splits.items()}
    kinds = {k.kind: Inputs(model, k.images) for k in read_ood_set(ood_dir)}
    test_images = [Image.open(io.BytesIO(d)) for d in splits["test"][0]]
    shifted = {name: Inputs(model, [canonical_bytes(_png(shift(im))) for im in test_images])
               for name, shift in SHIFTS.items()}
    far = [k for k in FAR_OOD_KINDS if k in kinds]
    near = [k for k in NEAR_OOD_KINDS if k in kinds]
    rows = [_row("variant", ["test accepted", "far OOD refused", *far, *near,
                             *(f"test, {s}" for s in SHIFTS)]),
            _row("---", ["---"] * (2 + len(far) + len(near) + len(SHIFTS)))]
    for name, variant in VARIANTS.items():
        score = _scorer(inputs["train"], splits["train"][1], variant)
        threshold = choose_gate_threshold(score(inputs["validation"]), TARGET)
        refused = {k: score(kinds[k]) < threshold for k in far + near}
        cells = [f"{np.mean(score(inputs['test']) >= threshold):.3f}",
                 f"{np.mean(np.concatenate([refused[k] for k in far])):.3f}",
                 *(f"{np.mean(refused[k]):.2f}" for k in far + near),
                 *(f"{np.mean(score(shifted[s]) >= threshold):.2f}" for s in SHIFTS)]
        rows.append(_row(name, cells))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.gate_variants", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the labelled data folder")
    parser.add_argument("--run-dir", type=Path, required=True,
                        help="a finished training run (manifest.csv, checkpoints, history.json)")
    parser.add_argument("--ood", type=Path, required=True,
                        help="the OOD set (python -m training.ood_set)")
    args = parser.parse_args(argv)
    print("\n".join(measure(args.data, args.run_dir, args.ood)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

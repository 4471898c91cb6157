"""Exporting a trained model as a versioned SavedModel with its model card, and reading it back.

The exported `serving_default` signature takes encoded image bytes and returns P(tumor): the
preprocessing graph from preprocessing.py runs inside it. `load_signature` calls that same
signature, so `python -m training evaluate` scores models exactly as the service does.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training.preprocessing import PreprocessConfig, make_preprocess_fn

SIGNATURE_NAME = "serving_default"
INPUT_KEY = "image_bytes"
OUTPUT_KEY = "tumor_probability"
MODEL_CARD_ASSET = "model_card.json"
ACCEPTED_ENCODINGS = ["PNG", "JPEG"]


def next_version(model_root: Path) -> int:
    """One more than the highest existing numeric version folder (1 for a new model)."""
    if not model_root.is_dir():
        return 1
    versions = [int(p.name) for p in model_root.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def input_description(preprocess: PreprocessConfig) -> dict[str, Any]:
    colour = "greyscale" if preprocess.channels == 1 else "RGB"
    crop = "cropped to the brain's bounding box, " if preprocess.crop_to_brain else ""
    return {
        "signature": SIGNATURE_NAME,
        "input_key": INPUT_KEY,
        "output_key": OUTPUT_KEY,
        "accepted_encodings": ACCEPTED_ENCODINGS,
        "preprocessing": preprocess.to_dict(),
        "description": (
            "One 2-D brain MRI slice per example, as encoded PNG or JPEG bytes (other "
            "formats are converted to PNG first, see docs/model-contract.md). Inside the graph "
            f"it is decoded to 8-bit {colour}, {crop}resized to "
            f"{preprocess.image_size}x{preprocess.image_size} and scaled to [0, 1]."
        ),
    }


def export_model(
    model: keras.Model,
    preprocess: PreprocessConfig,
    card: dict[str, Any],
    models_dir: Path,
    name: str,
) -> Path:
    """Write `<models_dir>/<name>/<next version>/` and return that folder.

    The SavedModel is written to a temporary folder beside it and renamed into place, so a
    crash never leaves a half-written version for a server to pick up.
    """
    model_root = models_dir / name
    model_root.mkdir(parents=True, exist_ok=True)
    version = next_version(model_root)
    preprocess_batch = make_preprocess_fn(preprocess)

    def serve(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        pixels = preprocess_batch(image_bytes)
        probabilities = model(pixels, training=False)
        return {OUTPUT_KEY: tf.reshape(probabilities, [-1])}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE_NAME,
        fn=serve,
        input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_KEY)],
    )
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=model_root))
    try:
        archive.write_out(str(staging), verbose=False)
        full_card = {
            **card,
            "name": name,
            "version": version,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "input": input_description(preprocess),
        }
        (staging / "assets").mkdir(exist_ok=True)
        (staging / "assets" / MODEL_CARD_ASSET).write_text(json.dumps(full_card, indent=2) + "\n")
        # mkdtemp made the folder private (0700); a server running as another user (the
        # container's) must be able to read it.
        staging.chmod(0o755)
        target = model_root / str(version)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_model_card(version_dir: Path) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((version_dir / "assets" / MODEL_CARD_ASSET).read_text())
    return card


def load_signature(
    version_dir: Path, batch_size: int = 32
) -> Callable[[Sequence[bytes]], np.ndarray]:
    """Load an exported version and return `predict(canonical bytes list) -> P(tumor) array`."""
    loaded = tf.saved_model.load(str(version_dir))
    signature = loaded.signatures[SIGNATURE_NAME]

    def predict(images: Sequence[bytes]) -> np.ndarray:
        outputs = []
        for start in range(0, len(images), batch_size):
            chunk = tf.constant(list(images[start : start + batch_size]), dtype=tf.string)
            outputs.append(signature(**{INPUT_KEY: chunk})[OUTPUT_KEY].numpy())
        if not outputs:
            return np.zeros((0,), dtype=np.float32)
        return np.concatenate(outputs).astype(np.float32)

    # Keep the loaded object alive as long as the closure is.
    predict.loaded = loaded  # type: ignore[attr-defined]
    return predict

"""Finding, loading and calling the exported SavedModel: the service's side of the model seam.

TensorFlow is imported here, lazily, so the HTTP server answers (live, not ready) while the
library and the model load in the background.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

logger = logging.getLogger("service")

MODEL_CARD_ASSET = Path("assets") / "model_card.json"
DEFAULT_SIGNATURE = "serving_default"
DEFAULT_INPUT_KEY = "image_bytes"
DEFAULT_OUTPUT_KEY = "tumor_probability"


class ModelLoadError(RuntimeError):
    """The model folder is missing, ambiguous or corrupt; the message says which and where."""


class ModelInputError(ValueError):
    """The model's graph refused an input (e.g. bytes its decoder cannot read)."""


@dataclass(frozen=True)
class ModelCard:
    """The parts of the model card the service acts on, plus the whole card to show."""

    name: str
    version: int
    classes: tuple[str, str]
    positive_class: str
    negative_class: str
    threshold: float
    signature: str
    input_key: str
    output_key: str
    raw: dict[str, Any]

    def label_for(self, probability: float) -> str:
        return self.positive_class if probability >= self.threshold else self.negative_class


def find_version_dir(model_dir: Path, model_name: str | None) -> Path:
    """`<model_dir>/<name>/<highest numeric version>/`, TensorFlow Serving's rule."""
    if not model_dir.is_dir():
        raise ModelLoadError(f"model folder {model_dir} does not exist")
    if model_name is None:
        names = sorted(
            p.name for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        if not names:
            raise ModelLoadError(f"no model under {model_dir} (expected <name>/<version>/)")
        if len(names) > 1:
            raise ModelLoadError(
                f"several models under {model_dir} ({', '.join(names)}); set MRI_MODEL_NAME"
            )
        model_name = names[0]
    model_root = model_dir / model_name
    if not model_root.is_dir():
        raise ModelLoadError(f"no model named {model_name!r} under {model_dir}")
    versions = [int(p.name) for p in model_root.iterdir() if p.is_dir() and p.name.isdigit()]
    versions = [v for v in versions if v > 0]
    if not versions:
        raise ModelLoadError(f"no numeric version folder under {model_root}")
    return model_root / str(max(versions))


def read_model_card(version_dir: Path) -> ModelCard:
    path = version_dir / MODEL_CARD_ASSET
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(f"model card {path} is missing") from None
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"model card {path} is unreadable: {error}") from None
    try:
        classes = [str(c) for c in raw["classes"]]
        positive = str(raw["positive_class"])
        threshold = float(raw["threshold"])
        if len(classes) != 2 or positive not in classes:
            raise ValueError("classes must be two names, one of them positive_class")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be in [0, 1]")
        spec = raw.get("input", {})
        return ModelCard(
            name=str(raw.get("name", version_dir.parent.name)),
            version=int(raw.get("version", version_dir.name)),
            classes=(classes[0], classes[1]),
            positive_class=positive,
            negative_class=next(c for c in classes if c != positive),
            threshold=threshold,
            signature=str(spec.get("signature", DEFAULT_SIGNATURE)),
            input_key=str(spec.get("input_key", DEFAULT_INPUT_KEY)),
            output_key=str(spec.get("output_key", DEFAULT_OUTPUT_KEY)),
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ModelLoadError(f"model card {path} is invalid: {error}") from None


def configure_tensorflow_threads(intra_op: int, inter_op: int) -> None:
    """Must run before TensorFlow executes its first op; later calls cannot take effect."""
    import tensorflow as tf

    try:
        if intra_op:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        if inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as error:
        logger.warning("TensorFlow thread settings not applied (runtime already started): %s",
                       error)


def warmup_image() -> bytes:
    """A small synthetic slice (a bright disc on black) to warm the graph up with."""
    image = Image.new("L", (96, 96), 0)
    ImageDraw.Draw(image).ellipse((16, 12, 80, 86), fill=170)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class ModelRunner:
    """A loaded SavedModel version: `predict(canonical image bytes) -> P(tumor)` per image."""

    def __init__(self, version_dir: Path, card: ModelCard, loaded: Any, signature: Any) -> None:
        self.version_dir = version_dir
        self.card = card
        self._loaded = loaded  # keeps the signature's variables alive
        self._signature = signature

    @classmethod
    def load(cls, version_dir: Path) -> ModelRunner:
        card = read_model_card(version_dir)
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(version_dir))
        except Exception as error:
            raise ModelLoadError(f"SavedModel {version_dir} cannot be loaded: {error}") from None
        signatures = getattr(loaded, "signatures", {})
        if card.signature not in signatures:
            raise ModelLoadError(f"SavedModel {version_dir} has no {card.signature!r} signature")
        return cls(version_dir, card, loaded, signatures[card.signature])

    def predict(self, images: Sequence[bytes]) -> np.ndarray:
        """P(tumor) for each canonical image, in order. Runs TensorFlow: never on the loop."""
        import tensorflow as tf

        batch = tf.constant(list(images), dtype=tf.string)
        try:
            outputs = self._signature(**{self.card.input_key: batch})[self.card.output_key]
        except tf.errors.InvalidArgumentError as error:
            raise ModelInputError(error.message) from None
        probabilities: np.ndarray = np.asarray(outputs.numpy(), dtype=np.float32).reshape(-1)
        if probabilities.shape[0] != len(images):
            raise RuntimeError(
                f"model returned {probabilities.shape[0]} outputs for {len(images)} images"
            )
        return probabilities

    def warm_up(self, batch_sizes: Sequence[int]) -> None:
        """Run the graph once per batch size so the first real request is not the slow one."""
        image = warmup_image()
        for size in batch_sizes:
            probabilities = self.predict([image] * size)
            if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probabilities.tolist()):
                raise ModelLoadError(
                    f"model at {self.version_dir} returned {probabilities.tolist()[:3]} on the "
                    "warm-up image, not probabilities in [0, 1]"
                )

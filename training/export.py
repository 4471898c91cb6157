"""Exporting a trained model as a versioned SavedModel with its model card, and reading it back.

One export, in four steps: `stage_export` writes the SavedModel to a hidden temporary folder
beside the versions; `verify_export` loads it and checks its signature gives the in-memory
model's outputs; the run scores validation and test through that staged signature (so the card
carries the figures a user of the exported model gets); `publish` writes the card and renames
the folder into the next version. A crash never leaves a half-written version behind.

The exported `serving_default` signature takes encoded image bytes and returns P(tumor): the
preprocessing graph from preprocessing.py runs inside it. `load_signature` calls that same
signature, so `python -m training evaluate` scores models exactly as the service does.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from model_contract import (
    ACCEPTED_ENCODINGS,
    EXPLAIN_SIGNATURE,
    GATE_OUTPUT_KEY,
    INPUT_KEY,
    OUTPUT_KEY,
    SERVING_SIGNATURE,
    ExplainSpec,
    InputSpec,
    ModelCard,
    next_version,
    write_card,
)
from training.gradcam import GateScore, explain_spec, make_explain_fn
from training.input_gate import Gate, feature_model, make_gate_preprocess_fn
from training.preprocessing import PreprocessConfig, make_preprocess_fn

PredictFn = Callable[[Sequence[bytes]], np.ndarray]
OutputsFn = Callable[[Sequence[bytes]], dict[str, np.ndarray]]
# The exported graph must give the in-memory model's P(tumor); beyond float32 noise is a bug.
EXPORT_TOLERANCE = 1e-5
VERIFY_IMAGES = 64


class ExportError(RuntimeError):
    """The exported SavedModel does not compute what the trained model computes."""


@dataclass(frozen=True)
class StagedExport:
    """A SavedModel written to a hidden folder inside the model's folder, not yet a version."""

    model_root: Path
    folder: Path
    preprocess: PreprocessConfig
    explain: ExplainSpec | None = None  # the card's explain section, when exported with one

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class GateWeights(tf.Module):  # type: ignore[misc]
    """The input gate's variables, for the export to track."""

    def __init__(self, weights: Sequence[tf.Variable]) -> None:
        super().__init__(name="input_gate")
        self.gate_weights = list(weights)


def input_spec(preprocess: PreprocessConfig) -> InputSpec:
    colour = "greyscale" if preprocess.channels == 1 else "RGB"
    crop = "cropped to the brain's bounding box, " if preprocess.crop_to_brain else ""
    return InputSpec(
        signature=SERVING_SIGNATURE,
        input_key=INPUT_KEY,
        output_key=OUTPUT_KEY,
        accepted_encodings=ACCEPTED_ENCODINGS,
        preprocessing=preprocess.to_dict(),
        description=(
            "One 2-D brain MRI slice per example, as encoded PNG or JPEG bytes (other "
            "formats are converted to PNG first, see docs/model-contract.md). Inside the graph "
            f"it is decoded to 8-bit {colour}, {crop}resized to "
            f"{preprocess.image_size}x{preprocess.image_size} and scaled to [0, 1]."
        ),
    )


def _archive(
    model: keras.Model, preprocess: PreprocessConfig, gate: Gate | None, explain: bool
) -> keras.export.ExportArchive:
    preprocess_batch = make_preprocess_fn(preprocess)
    # With a gate, one pass of the network gives P(tumor) and the gate's features.
    network = model if gate is None else feature_model(model)

    gate_preprocess = make_gate_preprocess_fn(preprocess)

    def gate_score(image_bytes: tf.Tensor) -> tf.Tensor:
        """The gate's score [N] of encoded images [N]: the same graph serving_default runs."""
        assert gate is not None
        pixels, colour, aspect = gate_preprocess(image_bytes)
        _, features = network(pixels, training=False)
        return gate.score(features, colour, aspect)

    scorer: GateScore | None = None if gate is None else gate_score

    def serve(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        if gate is None:
            pixels = preprocess_batch(image_bytes)
            return {OUTPUT_KEY: tf.reshape(model(pixels, training=False), [-1])}
        # The same pixels, from one pass that also measures colour and shape (input_gate.py).
        pixels, colour, aspect = gate_preprocess(image_bytes)
        probabilities, features = network(pixels, training=False)
        return {
            OUTPUT_KEY: tf.reshape(probabilities, [-1]),
            GATE_OUTPUT_KEY: gate.score(features, colour, aspect),
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    if gate is not None:  # its matrices, created here (eagerly) and stored once
        archive.track(GateWeights(gate.weights))
    archive.add_endpoint(
        name=SERVING_SIGNATURE,
        fn=serve,
        input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_KEY)],
    )
    if explain:  # Grad-CAM, see gradcam.py
        archive.add_endpoint(
            name=EXPLAIN_SIGNATURE,
            fn=make_explain_fn(model, preprocess, gate_score=scorer),
            input_signature=[tf.TensorSpec([], tf.string, name=INPUT_KEY)],
        )
    return archive


def stage_export(
    model: keras.Model,
    preprocess: PreprocessConfig,
    models_dir: Path,
    name: str,
    gate: Gate | None = None,
    explain: bool = True,
) -> StagedExport:
    """Write the SavedModel to `<models_dir>/<name>/.staging-*/` (invisible to the scanner).

    With a fitted `gate`, serving_default also returns `brain_mri_score`; with `explain` it
    also gets the `explain` signature (which returns the same gate score when there is a gate).
    """
    model_root = models_dir / name
    model_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".staging-", dir=model_root))
    spec = explain_spec(model) if explain else None
    staged = StagedExport(model_root, folder, preprocess, spec)
    try:
        _archive(model, preprocess, gate, explain).write_out(str(folder), verbose=False)
    except BaseException:
        staged.discard()
        raise
    return staged


def verify_export(
    exported_predict: PredictFn,
    model: keras.Model,
    preprocess: PreprocessConfig,
    images: Sequence[bytes],
) -> float:
    """Compare the exported signature's P(tumor) with the in-memory model's on `images` (at
    most VERIFY_IMAGES of them); returns the largest difference, ExportError above tolerance."""
    sample = list(images[:VERIFY_IMAGES])
    if not sample:
        return 0.0
    exported = exported_predict(sample)
    pixels = make_preprocess_fn(preprocess)(tf.constant(sample, dtype=tf.string))
    expected = np.asarray(model(pixels, training=False), dtype=np.float32).reshape(-1)
    difference = float(np.max(np.abs(exported - expected)))
    if difference > EXPORT_TOLERANCE:
        raise ExportError(
            f"the exported signature differs from the trained model by {difference:.2e} "
            f"(tolerance {EXPORT_TOLERANCE:.0e})"
        )
    return difference


def publish(staged: StagedExport, card: ModelCard) -> Path:
    """Write the card (name, version, time and input filled in) and rename the staged folder
    into `<model_root>/<next version>/`; returns that folder."""
    try:
        version = next_version(staged.model_root)
        stamped = dataclasses.replace(
            card,
            name=staged.model_root.name,
            version=version,
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            input=input_spec(staged.preprocess),
            explain=staged.explain,
        )
        write_card(staged.folder, stamped)
        # mkdtemp made the folder private (0700); a server running as another user (the
        # container's) must be able to read it.
        staged.folder.chmod(0o755)
        target = staged.model_root / str(version)
        staged.folder.rename(target)
    except BaseException:
        staged.discard()
        raise
    return target


def export_model(
    model: keras.Model,
    preprocess: PreprocessConfig,
    card: ModelCard,
    models_dir: Path,
    name: str,
    verify_with: Sequence[bytes] = (),
    gate: Gate | None = None,
    explain: bool = True,
) -> Path:
    """Stage, verify (on `verify_with`) and publish in one call; returns the version folder."""
    staged = stage_export(model, preprocess, models_dir, name, gate, explain)
    try:
        verify_export(load_signature(staged.folder), model, preprocess, verify_with)
    except BaseException:
        staged.discard()
        raise
    return publish(staged, card)


def load_outputs(version_dir: Path, batch_size: int = 32) -> OutputsFn:
    """Load an exported version and return `outputs(canonical bytes list) -> {key: array}`
    with every output of its serving signature (P(tumor), and the gate's score if it has one)."""
    loaded = tf.saved_model.load(str(version_dir))
    signature = loaded.signatures[SERVING_SIGNATURE]
    keys = sorted(signature.structured_outputs)

    def outputs(images: Sequence[bytes]) -> dict[str, np.ndarray]:
        chunks: dict[str, list[np.ndarray]] = {key: [] for key in keys}
        for start in range(0, len(images), batch_size):
            chunk = tf.constant(list(images[start : start + batch_size]), dtype=tf.string)
            answer = signature(**{INPUT_KEY: chunk})
            for key in keys:
                chunks[key].append(answer[key].numpy())
        return {key: np.concatenate(parts).astype(np.float32) if parts
                else np.zeros((0,), dtype=np.float32) for key, parts in chunks.items()}

    # Keep the loaded object alive as long as the closure is.
    outputs.loaded = loaded  # type: ignore[attr-defined]
    return outputs


def load_signature(version_dir: Path, batch_size: int = 32) -> PredictFn:
    """Load an exported version and return `predict(canonical bytes list) -> P(tumor) array`."""
    outputs = load_outputs(version_dir, batch_size)

    def predict(images: Sequence[bytes]) -> np.ndarray:
        return outputs(images)[OUTPUT_KEY]

    predict.loaded = outputs.loaded  # type: ignore[attr-defined]
    return predict

"""The training loop: cache preprocessed pixels once, then fit with early stopping on validation.

The pixels come from `make_preprocess_fn`, the very function the exported signature wraps, run
once per file and kept as float16 (half the memory of float32; its rounding, under 0.05% of
the [0, 1] range, is far below the augmentation noise). Runs are reproducible from a seed:
Keras, NumPy and Python seeds are set and TensorFlow's ops run deterministically.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training.architectures import build_model, default_preprocess
from training.discovery import DataError
from training.preprocessing import PreprocessConfig, make_preprocess_fn

logger = logging.getLogger(__name__)

CACHE_CHUNK = 64
# Part of the run folder's documented layout; other tools read the best weights here.
CHECKPOINT_FILE = Path("checkpoints") / "best.weights.h5"
# Class weights are applied only when the larger class outnumbers the smaller one by more
# than this: mild imbalance is left alone, because weighting distorts calibration.
IMBALANCE_RATIO_FOR_WEIGHTS = 1.5


@dataclass(frozen=True)
class TrainingConfig:
    architecture: str = "compact"
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 2e-3
    patience: int = 10
    seed: int = 0
    image_size: int | None = None  # overrides the architecture's default input size
    width: int | None = None  # overrides the compact architecture's first-stage width
    # Validation ROC-AUC, not loss: on this data the validation loss swings with calibration
    # from epoch to epoch while the ranking improves steadily, and the threshold is chosen
    # afterwards on validation anyway.
    monitor: str = "val_auc"

    def preprocess(self) -> PreprocessConfig:
        base = default_preprocess(self.architecture)
        if self.image_size is None:
            return base
        return PreprocessConfig(self.image_size, base.channels, base.crop_to_brain)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["lr_schedule"] = (
            f"cosine decay from {self.learning_rate} to 0 over {self.epochs} epochs"
        )
        values["early_stopping"] = (
            f"on {self.monitor}, patience {self.patience}, best weights restored"
        )
        values["preprocess"] = self.preprocess().to_dict()
        return values


@dataclass
class FitResult:
    model: keras.Model
    history: dict[str, list[float]]
    best_epoch: int  # 1-based
    epochs_run: int
    seconds: float
    class_weight: dict[int, float] | None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TensorFlow's kernels deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def preprocess_images(
    images: Sequence[bytes], config: PreprocessConfig, chunk: int = CACHE_CHUNK
) -> np.ndarray:
    """Run the serving preprocessing over canonical bytes: float16 [n, S, S, C]."""
    preprocess_batch = tf.function(make_preprocess_fn(config))
    size, channels = config.image_size, config.channels
    pixels = np.zeros((len(images), size, size, channels), dtype=np.float16)
    for start in range(0, len(images), chunk):
        batch = tf.constant(list(images[start : start + chunk]), dtype=tf.string)
        pixels[start : start + chunk] = preprocess_batch(batch).numpy().astype(np.float16)
    return pixels


def balanced_class_weight(labels: np.ndarray) -> dict[int, float] | None:
    """Weights n / (2 n_c) when the classes are clearly unbalanced, else None."""
    counts = np.bincount(labels.astype(np.int64), minlength=2)
    if counts.min() == 0 or counts.max() / counts.min() <= IMBALANCE_RATIO_FOR_WEIGHTS:
        return None
    return {c: float(len(labels) / (2 * counts[c])) for c in (0, 1)}


def make_dataset(
    pixels: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle_seed: int | None = None,
    class_weight: dict[int, float] | None = None,
) -> tf.data.Dataset:
    """(float32 pixels, float32 label [1], sample weight) batches from cached arrays."""
    weights = np.ones(len(labels), dtype=np.float32)
    if class_weight is not None:
        weights = np.array([class_weight[int(y)] for y in labels], dtype=np.float32)
    dataset = tf.data.Dataset.from_tensor_slices(
        (pixels, labels.astype(np.float32).reshape(-1, 1), weights)
    )
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(
        lambda x, y, w: (tf.cast(x, tf.float32), y, w),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


class EpochLogger(keras.callbacks.Callback):  # type: ignore[misc]
    """One line per epoch: losses, accuracy and AUC on train and validation, rate, time."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self.started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        parts = [f"epoch {epoch + 1}/{self.epochs}"]
        for key in ("loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc"):
            if key in logs:
                parts.append(f"{key} {float(logs[key]):.4f}")
        parts.append(f"lr {rate:.2e}")
        parts.append(f"{time.monotonic() - self.started:.1f}s")
        logger.info("%s", "  ".join(parts))


def compile_model(
    model: keras.Model, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule
) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )


def _callbacks(
    config: TrainingConfig, run_dir: Path
) -> tuple[keras.callbacks.EarlyStopping, list[keras.callbacks.Callback]]:
    """Early stopping (best weights restored), the best checkpoint, the CSV history, a log line
    per epoch."""
    (run_dir / CHECKPOINT_FILE).parent.mkdir(parents=True, exist_ok=True)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=config.monitor, mode="max", patience=config.patience, restore_best_weights=True
    )
    return early_stopping, [
        early_stopping,
        keras.callbacks.ModelCheckpoint(
            str(run_dir / CHECKPOINT_FILE),
            monitor=config.monitor,
            mode="max",
            save_best_only=True,
            save_weights_only=True,
        ),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv")),
        EpochLogger(config.epochs),
    ]


def fit_model(
    config: TrainingConfig,
    train_pixels: np.ndarray,
    train_labels: np.ndarray,
    val_pixels: np.ndarray,
    val_labels: np.ndarray,
    run_dir: Path,
) -> FitResult:
    """Build and train the architecture; checkpoints and history go to `run_dir` as it runs."""
    seed_everything(config.seed)
    model = build_model(
        config.architecture, config.preprocess(), seed=config.seed, width=config.width
    )
    # Cosine decay over the whole budget: the seed-era plateau schedule halved the rate on
    # every noisy validation epoch and starved training after ~10 epochs (measured: test
    # ROC-AUC 0.916 with it on the real data).
    steps_per_epoch = max(1, int(np.ceil(len(train_labels) / config.batch_size)))
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=steps_per_epoch * config.epochs
    )
    compile_model(model, schedule)

    class_weight = balanced_class_weight(train_labels)
    train_ds = make_dataset(
        train_pixels, train_labels, config.batch_size, config.seed, class_weight
    )
    val_ds = make_dataset(val_pixels, val_labels, config.batch_size)
    early_stopping, callbacks = _callbacks(config, run_dir)
    started = time.monotonic()
    fitted = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        callbacks=callbacks,
        shuffle=False,  # the dataset shuffles itself, with the seed
        verbose=0,
    )
    seconds = time.monotonic() - started
    history = {key: [float(v) for v in values] for key, values in fitted.history.items()}
    epochs_run = len(history.get("loss", []))
    best_epoch = int(early_stopping.best_epoch) + 1
    (run_dir / "history.json").write_text(
        json.dumps({"history": history, "best_epoch": best_epoch}, indent=2) + "\n"
    )
    logger.info(
        "trained %d epochs in %.0fs; best epoch %d (%s %.4f), its weights restored",
        epochs_run, seconds, best_epoch, config.monitor, max(history[config.monitor]),
    )
    return FitResult(model, history, best_epoch, epochs_run, seconds, class_weight)


# The settings that decide what a fit produces: a resumed fit must have been run with these.
FIT_SETTINGS = ("architecture", "epochs", "batch_size", "learning_rate", "patience", "seed",
                "image_size", "width", "monitor")


class ResumeError(DataError):
    """The run folder to resume from holds no finished fit, or one made with other settings."""


def load_finished_fit(config: TrainingConfig, run_dir: Path, train_labels: np.ndarray) -> FitResult:
    """The fit an earlier run left in `run_dir` (its best weights and history.json), rebuilt
    without training. The earlier run's report.json, when present, must show the same settings."""
    weights, history_file = run_dir / CHECKPOINT_FILE, run_dir / "history.json"
    if not weights.is_file() or not history_file.is_file():
        raise ResumeError(f"{run_dir} holds no finished fit ({CHECKPOINT_FILE} and history.json)")
    seconds = 0.0
    report_file = run_dir / "report.json"
    if report_file.is_file():
        earlier = json.loads(report_file.read_text()).get("training", {})
        wanted = config.to_dict()
        differing = [k for k in FIT_SETTINGS if k in earlier and earlier[k] != wanted[k]]
        if differing:
            raise ResumeError(f"the fit in {run_dir} was made with other settings: "
                              + ", ".join(f"{k} {earlier[k]} (now {wanted[k]})" for k in differing))
        seconds = float(earlier.get("training_seconds", 0.0))
    saved = json.loads(history_file.read_text())
    seed_everything(config.seed)
    model = build_model(
        config.architecture, config.preprocess(), seed=config.seed, width=config.width
    )
    model.load_weights(str(weights))
    history = {key: [float(v) for v in values] for key, values in saved["history"].items()}
    logger.info("resumed the finished fit in %s (best epoch %d), no training", run_dir,
                int(saved["best_epoch"]))
    return FitResult(model, history, int(saved["best_epoch"]), len(history.get("loss", [])),
                     seconds, balanced_class_weight(train_labels))

"""Training the fold models, resumably: a stopped run continues where it stopped.

Each fold trains on the other folds for a fixed number of epochs (cosine decay to zero, the
last weights kept): nothing is selected on the held-out fold, so its predictions are honest
out-of-fold estimates. A fold's folder holds a per-epoch backup while it trains (Keras'
BackupAndRestore: weights, optimizer state and epoch), and once finished its final weights
and `fold.json` (its key, held-out predictions, history). A finished fold whose key matches
is loaded, never refitted; an unfinished one resumes from its last completed epoch.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from training.architectures import build_model
from training.fitting import (
    EpochLogger,
    TrainingConfig,
    balanced_class_weight,
    compile_model,
    make_dataset,
    seed_everything,
)

logger = logging.getLogger(__name__)

FOLDS_DIR = Path("folds")
FINAL_WEIGHTS = "final.weights.h5"
RESULT_FILE = "fold.json"
BACKUP_DIR = "backup"
PREDICT_BATCH = 64


@dataclass
class FoldResult:
    fold: int
    model: keras.Model
    held_out: np.ndarray  # indices into the development slices
    scores: np.ndarray  # P(tumor) of the held-out slices
    scores_flipped: np.ndarray  # ... of their left-right mirror images
    history: dict[str, list[float]]
    seconds: float
    resumed: bool  # loaded from a finished fold instead of trained in this run


def fold_dir(run_dir: Path, fold: int) -> Path:
    return run_dir / FOLDS_DIR / f"fold-{fold + 1}"


def fold_seed(config: TrainingConfig, fold: int) -> int:
    return config.seed * 100 + fold


def predict_pixels(model: keras.Model, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(tumor) of cached pixels, as they are and mirrored left-right."""
    plain, flipped = [], []
    for start in range(0, len(pixels), PREDICT_BATCH):
        batch = pixels[start : start + PREDICT_BATCH].astype(np.float32)
        plain.append(np.asarray(model(batch, training=False)).reshape(-1))
        flipped.append(np.asarray(model(batch[:, :, ::-1, :], training=False)).reshape(-1))
    if not plain:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    return np.concatenate(plain), np.concatenate(flipped)


def _load_finished(folder: Path, key: str, model: keras.Model) -> dict[str, Any] | None:
    result_path = folder / RESULT_FILE
    if not result_path.is_file() or not (folder / FINAL_WEIGHTS).is_file():
        return None
    saved: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    if saved.get("key") != key:
        logger.info("  %s was trained with other settings or folds: training it again", folder)
        return None
    model.load_weights(str(folder / FINAL_WEIGHTS))
    return saved


def _forget_other_settings(folder: Path, key: str) -> None:
    """A half-trained backup from other settings or folds must not be resumed."""
    key_file = folder / "key.txt"
    if key_file.is_file() and key_file.read_text(encoding="utf-8").strip() != key:
        shutil.rmtree(folder / BACKUP_DIR, ignore_errors=True)
        (folder / "history.csv").unlink(missing_ok=True)
    key_file.write_text(key + "\n", encoding="utf-8")


def _train(config: TrainingConfig, model: keras.Model, pixels: np.ndarray, labels: np.ndarray,
           folder: Path, seed: int) -> dict[str, list[float]]:
    steps_per_epoch = max(1, int(np.ceil(len(labels) / config.batch_size)))
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=steps_per_epoch * config.epochs
    )
    compile_model(model, schedule)
    dataset = make_dataset(pixels, labels, config.batch_size, seed, balanced_class_weight(labels))
    fitted = model.fit(
        dataset, epochs=config.epochs, shuffle=False, verbose=0,
        callbacks=[
            keras.callbacks.BackupAndRestore(str(folder / BACKUP_DIR), delete_checkpoint=True),
            keras.callbacks.CSVLogger(str(folder / "history.csv"), append=True),
            EpochLogger(config.epochs),
        ],
    )
    return {key: [float(v) for v in values] for key, values in fitted.history.items()}


def fit_fold(config: TrainingConfig, fold: int, pixels: Callable[[], np.ndarray],
             labels: np.ndarray, folds: np.ndarray, run_dir: Path, key: str) -> FoldResult:
    """Train (or load, or resume) fold `fold`'s model: trained on every other fold.
    `pixels()` gives the development slices' pixels; a finished fold never calls it."""
    folder = fold_dir(run_dir, fold)
    folder.mkdir(parents=True, exist_ok=True)
    seed = fold_seed(config, fold)
    seed_everything(seed)
    model = build_model(config.architecture, config.preprocess(), seed=seed, width=config.width)
    held_out = np.flatnonzero(folds == fold)
    saved = _load_finished(folder, key, model)
    if saved is None:
        _forget_other_settings(folder, key)
    else:
        logger.info("fold %d: finished earlier, loaded from %s", fold + 1, folder)
        return FoldResult(fold, model, held_out, np.array(saved["scores"], np.float32),
                          np.array(saved["scores_flipped"], np.float32), saved["history"],
                          float(saved["seconds"]), resumed=True)
    trained = folds != fold
    logger.info("fold %d: training on %d slices, %d held out", fold + 1, int(trained.sum()),
                len(held_out))
    started = time.monotonic()
    history = _train(config, model, pixels()[trained], labels[trained], folder, seed)
    seconds = time.monotonic() - started
    scores, flipped = predict_pixels(model, pixels()[held_out])
    model.save_weights(str(folder / FINAL_WEIGHTS))
    (folder / RESULT_FILE).write_text(json.dumps({
        "fold": fold + 1, "key": key, "seed": seed, "seconds": round(seconds, 1),
        "held_out": held_out.tolist(), "scores": scores.tolist(),
        "scores_flipped": flipped.tolist(), "history": history,
    }) + "\n", encoding="utf-8")
    return FoldResult(fold, model, held_out, scores, flipped, history, seconds, resumed=False)

"""The cross-validation step: folds of the development slices, one model per fold, OOF scores."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.discovery import ImageRecord
from training.ensemble import mean_logit
from training.fitting import TrainingConfig
from training.fitting import preprocess_images as to_pixels
from training.fold_fitting import FoldResult, fit_fold
from training.folds import FOLDS_FILE, assign_folds, fold_key, write_folds

logger = logging.getLogger(__name__)


@dataclass
class CrossValidation:
    records: list[ImageRecord]  # the development slices (train + validation), in path order
    groups: list[str]
    folds: np.ndarray  # fold of each slice
    results: list[FoldResult]  # one per fold, in fold order

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], dtype=np.int64)

    def oof_logits(self, flip_tta: bool = False) -> np.ndarray:
        """Each slice's logit of P(tumor) from the fold model that never saw its group (with
        flip TTA: the mean logit over the slice and its mirror image, as the ensemble does)."""
        logits = np.zeros(len(self.records), dtype=np.float64)
        for result in self.results:
            views = [result.scores, result.scores_flipped] if flip_tta else [result.scores]
            logits[result.held_out] = mean_logit(views)
        return logits

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.results)


def cross_validate(records: list[ImageRecord], group_of: dict[str, str], config: TrainingConfig,
                   k: int, run_dir: Path) -> CrossValidation:
    """Assign folds (written to folds.csv), then fit, load or resume every fold's model."""
    records = sorted(records, key=lambda r: r.path)
    groups = [group_of[r.path] for r in records]
    labels = np.array([r.label for r in records], dtype=np.int64)
    folds = assign_folds(labels, groups, k, config.seed)
    paths = [r.path for r in records]
    write_folds(run_dir / FOLDS_FILE, paths, groups, labels, folds)
    preprocess = config.preprocess()

    @functools.cache
    def pixels() -> np.ndarray:  # only when a fold has to be trained
        logger.info("preprocessing %d development slices to %dx%dx%d (crop to brain: %s)",
                    len(records), preprocess.image_size, preprocess.image_size,
                    preprocess.channels, preprocess.crop_to_brain)
        return to_pixels([r.data for r in records], preprocess)

    settings = config.to_dict()
    results = []
    for fold in range(k):
        held_paths = [p for p, f in zip(paths, folds.tolist(), strict=True) if f == fold]
        results.append(fit_fold(config, fold, pixels, labels, folds, run_dir,
                                fold_key(settings, held_paths)))
    return CrossValidation(records, groups, folds, results)

"""K-fold cross-validation by near-duplicate group on the development part (train + validation).

The test split stays as the split manifest made it. The rest is cut into K folds of whole
near-duplicate groups, stratified by label (scikit-learn's StratifiedGroupKFold), so no copy or
near-copy of a held-out slice is ever trained on by the model that predicts it. Each slice thus
gets one out-of-fold (OOF) prediction from the one model that never saw its group; calibration
and the operating points are fitted on those K x fewer-biased predictions rather than on one
small validation split.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_FOLDS = 3
FOLDS_FILE = "folds.csv"


def assign_folds(labels: np.ndarray, groups: Sequence[str], k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of every development slice; a group's slices share one fold."""
    if k < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    labels = np.asarray(labels).astype(np.int64)
    if len(labels) != len(groups):
        raise ValueError("one group id per slice is needed")
    n_groups = len(set(groups))
    if n_groups < k:
        raise ValueError(f"{n_groups} near-duplicate groups cannot make {k} folds")
    from sklearn.model_selection import StratifiedGroupKFold  # the CLI imports this module

    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = np.full(len(labels), -1, dtype=np.int64)
    placeholder = np.zeros((len(labels), 1))
    for fold, (_, held_out) in enumerate(splitter.split(placeholder, labels, list(groups))):
        folds[held_out] = fold
    return folds


def write_folds(path: Path, paths: Sequence[str], groups: Sequence[str],
                labels: np.ndarray, folds: np.ndarray) -> None:
    """folds.csv: path, group, label (1 = positive), fold; one row per development slice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("path", "group", "label", "fold"))
        for row in zip(paths, groups, labels.tolist(), folds.tolist(), strict=True):
            writer.writerow(row)


def fold_key(settings: dict[str, Any], held_out_paths: Sequence[str]) -> str:
    """What a finished fold's result depends on: the training settings and its held-out
    slices. A saved fold is reused only when this matches."""
    content = json.dumps({"settings": settings, "held_out": sorted(held_out_paths)},
                         sort_keys=True)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def fold_counts(labels: np.ndarray, folds: np.ndarray, k: int) -> list[dict[str, int]]:
    """Held-out slices per fold and class."""
    return [
        {"fold": fold,
         "images": int(np.sum(folds == fold)),
         "positive": int(np.sum((folds == fold) & (labels == 1))),
         "negative": int(np.sum((folds == fold) & (labels == 0)))}
        for fold in range(k)
    ]

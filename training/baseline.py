"""The metadata-only baseline: how far a model gets from the file's origin, not its anatomy.

It sees the stored file's width, height, colour mode and format, nothing else, and is fitted on
the training split, its threshold chosen on validation by the same rule as the CNN's and its
score taken on the same test images. A CNN that does not clearly beat it may have learned the
shortcut rather than the tumor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from training.images import ImageMetadata

DESCRIPTION = (
    "scikit-learn DecisionTreeClassifier (min_samples_leaf=3) on width, height, one-hot colour "
    "mode and one-hot file format of the stored file; fitted on train, threshold chosen on "
    "validation by the CNN's rule"
)


@dataclass
class MetadataBaseline:
    modes: list[str]
    formats: list[str]
    tree: DecisionTreeClassifier

    def features(self, metadata: Sequence[ImageMetadata]) -> np.ndarray:
        return metadata_features(metadata, self.modes, self.formats)

    def predict(self, metadata: Sequence[ImageMetadata]) -> np.ndarray:
        """P(positive) per file, from the leaf's training class frequencies."""
        if not metadata:
            return np.zeros((0,), dtype=np.float64)
        probabilities = self.tree.predict_proba(self.features(metadata))
        classes = list(self.tree.classes_)
        if 1 not in classes:
            return np.zeros(len(metadata), dtype=np.float64)
        column: np.ndarray = probabilities[:, classes.index(1)].astype(np.float64)
        return column


def metadata_features(
    metadata: Sequence[ImageMetadata], modes: Sequence[str], formats: Sequence[str]
) -> np.ndarray:
    """[width, height, one-hot mode..., one-hot format...]; unseen values are all-zero."""
    rows = [
        [float(m.width), float(m.height)]
        + [1.0 if m.mode == mode else 0.0 for mode in modes]
        + [1.0 if m.format == fmt else 0.0 for fmt in formats]
        for m in metadata
    ]
    return np.array(rows, dtype=np.float64).reshape(len(rows), 2 + len(modes) + len(formats))


def fit_metadata_baseline(
    metadata: Sequence[ImageMetadata], labels: np.ndarray, seed: int = 0
) -> MetadataBaseline:
    modes = sorted({m.mode for m in metadata})
    formats = sorted({m.format for m in metadata})
    tree = DecisionTreeClassifier(min_samples_leaf=3, random_state=seed)
    tree.fit(metadata_features(metadata, modes, formats), np.asarray(labels).astype(int))
    return MetadataBaseline(modes=modes, formats=formats, tree=tree)

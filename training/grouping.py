"""Grouping exact and near-duplicate images, so that copies of one slice never straddle splits.

Exact duplicates share a SHA-256 of the file bytes. Near-duplicates (the same slice re-encoded,
brightened, resized) share a perceptual hash: imagehash's 64-bit DCT hash (`phash`) of the
greyscale, EXIF-transposed image. Two images whose hashes differ in at most
`DEFAULT_MAX_DISTANCE` of the 64 bits are linked, and groups are the connected components of
those links (scipy's `connected_components`), so a chain of near-copies ends up in one group.

DICOM files carry what no hash sees: which study (scan session) a slice comes from. Slices of
one study are linked too (by Study Instance UID), so one patient's neighbouring slices, which
look alike without being near-copies, never straddle splits.

Why 6 bits: measured on the 3,711-image development set, a distance of <= 6 gives 1,500 groups
(largest 29 files, 6 with both labels); <= 8 starts merging distinct slices of one scan
(largest group 116) and <= 10 collapses the set (a group of 1,083). Re-encoding, brightening
and resizing a slice move its hash by far less than 6 bits (tests/training/test_grouping.py).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image, ImageOps
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from training.discovery import ImageRecord

logger = logging.getLogger(__name__)

DEFAULT_MAX_DISTANCE = 6
HASH_BITS = 64
_ROWS_PER_CHUNK = 1024
PROGRESS_EVERY = 1000
METHOD = (
    "sha256 exact duplicates + imagehash.phash (64-bit) of the greyscale, EXIF-transposed "
    "image; connected components of the pairs with Hamming distance <= max_distance, and of "
    "DICOM files sharing a Study Instance UID"
)


@dataclass(frozen=True)
class LabelConflict:
    """A group holding images of both classes.

    On the development set these are chains of similar-looking slices whose closest
    cross-label pair sits at the distance limit, not byte copies with two labels; they stay in
    the data (their whole group in one split) unless --drop-label-conflicts is given.
    """

    group: str
    paths: list[str]
    labels: list[int]
    min_cross_label_distance: int  # the smallest hash distance between a positive and a negative


@dataclass(frozen=True)
class Grouping:
    groups: list[str]  # group id per record, in record order
    max_distance: int
    exact_duplicate_files: int  # files whose bytes equal an earlier file's
    linked_pairs: int  # pairs of files within max_distance (exact copies included)
    conflicts: list[LabelConflict]

    @property
    def n_groups(self) -> int:
        return len(set(self.groups))

    def group_sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for group in self.groups:
            sizes[group] = sizes.get(group, 0) + 1
        return sizes

    def summary(self) -> dict[str, object]:
        sizes = self.group_sizes()
        return {
            "method": METHOD,
            "max_distance": self.max_distance,
            "files": len(self.groups),
            "groups": len(sizes),
            "largest_group": max(sizes.values(), default=0),
            "groups_with_copies": sum(1 for size in sizes.values() if size > 1),
            "exact_duplicate_files": self.exact_duplicate_files,
            "linked_pairs": self.linked_pairs,
            "label_conflict_groups": len(self.conflicts),
            "label_conflict_files": sum(len(c.paths) for c in self.conflicts),
        }


def perceptual_hash(data: bytes) -> np.ndarray:
    """The 64-bit phash of an encoded image as a bool vector."""
    with Image.open(io.BytesIO(data)) as image:
        grey = ImageOps.exif_transpose(image).convert("L")
    bits: np.ndarray = np.asarray(imagehash.phash(grey).hash, dtype=bool).reshape(-1)
    return bits


def hamming_distances(hashes: np.ndarray, rows: slice | None = None) -> np.ndarray:
    """Hamming distances between the hashes in `rows` and all hashes: int32 [rows, n]."""
    bits = hashes.astype(np.float32)
    block = bits[rows] if rows is not None else bits
    # For 0/1 vectors a and b: |a xor b| = a.(1-b) + (1-a).b, two matrix products.
    distances = block @ (1.0 - bits).T + (1.0 - block) @ bits.T
    result: np.ndarray = np.rint(distances).astype(np.int32)
    return result


def exact_duplicate_pairs(records: Sequence[ImageRecord]) -> list[tuple[int, int]]:
    """(first file with these bytes, later copy) for every byte-identical copy."""
    return _pairs_sharing([record.sha256 for record in records])


def same_study_pairs(records: Sequence[ImageRecord]) -> list[tuple[int, int]]:
    """(first DICOM file of a study, later file of that study) for every DICOM study."""
    return _pairs_sharing([record.study_uid for record in records])


def _pairs_sharing(keys: Sequence[str | None]) -> list[tuple[int, int]]:
    first_with_key: dict[str, int] = {}
    pairs = []
    for index, key in enumerate(keys):
        if key is None:
            continue
        first = first_with_key.setdefault(key, index)
        if first != index:
            pairs.append((first, index))
    return pairs


def perceptual_hashes(records: Sequence[ImageRecord]) -> np.ndarray:
    """bool [n, 64]: every record's phash."""
    n = len(records)
    hashes = np.zeros((n, HASH_BITS), dtype=bool)
    for index, record in enumerate(records, start=1):
        hashes[index - 1] = perceptual_hash(record.data)
        if index % PROGRESS_EVERY == 0 or index == n:
            logger.info("hashed %d/%d images", index, n)
    return hashes


def near_duplicate_pairs(hashes: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) with row < col of every pair within `max_distance` bits."""
    found_rows, found_cols = [], []
    for start in range(0, len(hashes), _ROWS_PER_CHUNK):
        stop = min(start + _ROWS_PER_CHUNK, len(hashes))
        rows, cols = np.nonzero(hamming_distances(hashes, slice(start, stop)) <= max_distance)
        upper = cols > rows + start  # each unordered pair once, no self-pairs
        found_rows.append(rows[upper] + start)
        found_cols.append(cols[upper])
    empty = np.zeros(0, dtype=np.int64)
    return np.concatenate([empty, *found_rows]), np.concatenate([empty, *found_cols])


def component_names(n: int, rows: np.ndarray, cols: np.ndarray) -> list[str]:
    """Group id per node: components of the links, numbered "g00001"... in node order."""
    links = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, components = connected_components(links, directed=False)
    names: dict[int, str] = {}
    return [names.setdefault(int(c), f"g{len(names) + 1:05d}") for c in components]


def label_conflicts(
    records: Sequence[ImageRecord], groups: list[str], hashes: np.ndarray
) -> list[LabelConflict]:
    """Every group holding both labels, with its closest cross-label pair's distance."""
    members: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    conflicts: list[LabelConflict] = []
    for group, indices in members.items():
        labels = np.array([records[i].label for i in indices])
        if len(set(labels.tolist())) < 2:
            continue
        distances = hamming_distances(hashes[indices])
        cross = distances[np.ix_(labels == 0, labels == 1)]
        conflicts.append(
            LabelConflict(
                group=group,
                paths=[records[i].path for i in indices],
                labels=labels.tolist(),
                min_cross_label_distance=int(cross.min()),
            )
        )
    return conflicts


def group_images(
    records: Sequence[ImageRecord], max_distance: int = DEFAULT_MAX_DISTANCE
) -> Grouping:
    """Assign every record a group id ("g00001", numbered in record order)."""
    exact = exact_duplicate_pairs(records)
    linked = exact + same_study_pairs(records)
    hashes = perceptual_hashes(records)
    near_rows, near_cols = near_duplicate_pairs(hashes, max_distance)
    rows = np.concatenate([near_rows, np.array([a for a, _ in linked], dtype=np.int64)])
    cols = np.concatenate([near_cols, np.array([b for _, b in linked], dtype=np.int64)])
    groups = component_names(len(records), rows, cols)
    return Grouping(
        groups=groups,
        max_distance=max_distance,
        exact_duplicate_files=len(exact),
        linked_pairs=len(near_rows),
        conflicts=label_conflicts(records, groups, hashes),
    )

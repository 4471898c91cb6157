"""Splitting images into train, validation and test by near-duplicate group, stratified by label.

Every group goes whole into one split, so no copy or near-copy of a test image is ever seen in
training. Within each label, groups are taken in a seeded random order and each one goes to the
split furthest below its target number of images, which keeps the label balance of every split
close to the whole set's. The manifest CSV (path, label, sha256, group, split) records the
split; its SHA-256 is the data fingerprint written into the model card.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.discovery import DataError, ImageRecord

SPLITS = ("train", "validation", "test")
EXCLUDED = "excluded"
MANIFEST_COLUMNS = ("path", "label", "sha256", "group", "split")


@dataclass(frozen=True)
class SplitFractions:
    train: float = 0.70
    validation: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        values = (self.train, self.validation, self.test)
        if min(values) <= 0 or abs(sum(values) - 1.0) > 1e-6:
            raise ValueError("split fractions must be positive and sum to 1")

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.train, self.validation, self.test)


@dataclass(frozen=True)
class ManifestRow:
    path: str
    label: str  # the class folder name
    sha256: str
    group: str
    split: str


def assign_splits(
    records: Sequence[ImageRecord],
    groups: Sequence[str],
    fractions: SplitFractions = SplitFractions(),
    seed: int = 0,
    excluded_groups: frozenset[str] = frozenset(),
) -> list[str]:
    """The split of every record ("train", "validation", "test" or "excluded")."""
    if len(records) != len(groups):
        raise ValueError("one group id per record is needed")
    members: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)

    # A group's stratum is its majority label (ties count as positive): only label-conflict
    # groups have a mix, and they are few.
    by_label: dict[int, list[str]] = {0: [], 1: []}
    for group in sorted(members):
        if group in excluded_groups:
            continue
        labels = [records[i].label for i in members[group]]
        by_label[1 if 2 * sum(labels) >= len(labels) else 0].append(group)

    rng = np.random.default_rng(seed)
    group_split: dict[str, str] = {}
    for label in (0, 1):
        stratum = by_label[label]
        order = rng.permutation(len(stratum))
        total = sum(len(members[group]) for group in stratum)
        targets = np.array(fractions.as_tuple()) * total
        filled = np.zeros(len(SPLITS))
        for position in order:
            group = stratum[int(position)]
            split_index = int(np.argmax(targets - filled))
            group_split[group] = SPLITS[split_index]
            filled[split_index] += len(members[group])
    return [group_split.get(group, EXCLUDED) for group in groups]


def manifest_rows(
    records: Sequence[ImageRecord], groups: Sequence[str], splits: Sequence[str]
) -> list[ManifestRow]:
    rows = [
        ManifestRow(r.path, r.class_name, r.sha256, group, split)
        for r, group, split in zip(records, groups, splits, strict=True)
    ]
    return sorted(rows, key=lambda row: row.path)


def manifest_csv(rows: Sequence[ManifestRow]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for row in rows:
        writer.writerow([row.path, row.label, row.sha256, row.group, row.split])
    return buffer.getvalue().encode("utf-8")


def write_manifest(rows: Sequence[ManifestRow], path: Path) -> str:
    """Write the manifest CSV and return its SHA-256, the data fingerprint."""
    content = manifest_csv(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return hashlib.sha256(content).hexdigest()


def read_manifest(path: Path) -> list[ManifestRow]:
    """Read a manifest written by `write_manifest`; DataError if it is missing or malformed."""
    if not path.is_file():
        raise DataError(f"split manifest '{path}' does not exist.")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or set(MANIFEST_COLUMNS) - set(reader.fieldnames):
            raise DataError(
                f"split manifest '{path}' lacks the columns {', '.join(MANIFEST_COLUMNS)}."
            )
        return [ManifestRow(*(row[column] for column in MANIFEST_COLUMNS)) for row in reader]


def split_counts(rows: Sequence[ManifestRow], classes: Sequence[str]) -> dict[str, dict[str, int]]:
    """Images per split and class, plus groups per split."""
    counts: dict[str, dict[str, int]] = {}
    for split in (*SPLITS, EXCLUDED):
        in_split = [row for row in rows if row.split == split]
        if not in_split and split == EXCLUDED:
            continue
        entry = {name: sum(1 for row in in_split if row.label == name) for name in classes}
        entry["images"] = len(in_split)
        entry["groups"] = len({row.group for row in in_split})
        counts[split] = entry
    return counts

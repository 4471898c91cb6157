"""Near-duplicate grouping and the split by group: copies of a slice never straddle splits."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
from PIL import Image, ImageEnhance
from synthetic_images import encode, make_slice

from training.discovery import ImageRecord
from training.grouping import DEFAULT_MAX_DISTANCE, group_images, hamming_distances
from training.images import canonical_bytes, image_metadata
from training.splitting import (
    EXCLUDED,
    SPLITS,
    SplitFractions,
    assign_splits,
    manifest_csv,
    manifest_rows,
)


def _record(path: str, data: bytes, label: int) -> ImageRecord:
    return ImageRecord(
        path=path,
        class_name="tumor" if label else "healthy",
        label=label,
        sha256=hashlib.sha256(data).hexdigest(),
        data=canonical_bytes(data),
        metadata=image_metadata(data),
    )


def _copies(image: Image.Image) -> dict[str, bytes]:
    return {
        "original.png": encode(image, "PNG"),
        "exact_copy.png": encode(image, "PNG"),
        "reencoded_q35.jpg": encode(image.convert("RGB"), "JPEG", quality=35),
        "brightened.png": encode(ImageEnhance.Brightness(image).enhance(1.3), "PNG"),
        "resized_300.jpg": encode(image.resize((300, 300), Image.Resampling.BILINEAR), "JPEG"),
        "resized_80.png": encode(image.resize((80, 80), Image.Resampling.BILINEAR), "PNG"),
    }



def test_reencoded_brightened_and_resized_copies_share_a_group() -> None:
    records = [
        _record(f"slice{seed}/{name}", data, label=seed % 2)
        for seed in range(6)
        for name, data in _copies(make_slice(seed, 128, tumor=seed % 2 == 1)).items()
    ]
    grouping = group_images(records)

    groups_by_slice: dict[str, set[str]] = defaultdict(set)
    for record, group in zip(records, grouping.groups, strict=True):
        groups_by_slice[record.path.split("/")[0]].add(group)
    # All six variants of one slice in one group, and six distinct slices in six groups.
    assert all(len(groups) == 1 for groups in groups_by_slice.values())
    assert len({next(iter(g)) for g in groups_by_slice.values()}) == 6
    assert grouping.n_groups == 6
    assert grouping.exact_duplicate_files == 6
    assert grouping.conflicts == []


def test_distinct_slices_stay_apart_and_distances_are_hamming() -> None:
    records = [_record(f"{seed}.png", encode(make_slice(seed, 128, tumor=seed % 3 == 0), "PNG"),
                       seed % 2) for seed in range(40)]
    grouping = group_images(records)
    assert grouping.n_groups == 40

    bits = np.random.default_rng(0).integers(0, 2, size=(7, 64)).astype(bool)
    expected = (bits[:, None, :] != bits[None, :, :]).sum(axis=-1)
    assert np.array_equal(hamming_distances(bits), expected)
    assert np.array_equal(hamming_distances(bits, slice(2, 5)), expected[2:5])


def test_a_group_holding_both_labels_is_reported_as_a_conflict() -> None:
    image = make_slice(3, 128)
    records = [
        _record("healthy/a.png", encode(image, "PNG"), 0),
        _record("tumor/a_copy.jpg", encode(image.convert("RGB"), "JPEG", quality=80), 1),
        _record("tumor/other.png", encode(make_slice(4, 128, tumor=True), "PNG"), 1),
    ]
    grouping = group_images(records, max_distance=DEFAULT_MAX_DISTANCE)
    assert len(grouping.conflicts) == 1
    conflict = grouping.conflicts[0]
    assert conflict.paths == ["healthy/a.png", "tumor/a_copy.jpg"]
    assert conflict.labels == [0, 1]
    assert conflict.min_cross_label_distance <= DEFAULT_MAX_DISTANCE
    assert grouping.summary()["label_conflict_files"] == 2


def _grouped_records(n_slices: int) -> list[ImageRecord]:
    """Slices with 1 to 4 near-copies each, so groups have different sizes."""
    records = []
    for seed in range(n_slices):
        label = int(seed % 5 < 3)  # unbalanced: 60% positive
        image = make_slice(seed, 96, tumor=bool(label))
        variants = list(_copies(image).items())[: 1 + seed % 4]
        records += [_record(f"s{seed}/{name}", data, label) for name, data in variants]
    return records


def test_no_group_straddles_two_splits_and_labels_are_stratified() -> None:
    records = _grouped_records(60)
    grouping = group_images(records)
    splits = assign_splits(records, grouping.groups, SplitFractions(0.7, 0.15, 0.15), seed=3)

    split_of_group: dict[str, set[str]] = defaultdict(set)
    for group, split in zip(grouping.groups, splits, strict=True):
        split_of_group[group].add(split)
    assert all(len(found) == 1 for found in split_of_group.values())
    assert set(splits) == set(SPLITS)

    labels = np.array([r.label for r in records])
    chosen = np.array(splits)
    for label in (0, 1):
        total = int((labels == label).sum())
        for split, fraction in zip(SPLITS, (0.7, 0.15, 0.15), strict=True):
            count = int(((labels == label) & (chosen == split)).sum())
            assert abs(count - fraction * total) <= 4, (label, split, count, total)


def test_split_is_reproducible_from_the_seed_and_conflicts_can_be_excluded() -> None:
    records = _grouped_records(40)
    groups = group_images(records).groups
    first = assign_splits(records, groups, seed=7)
    assert assign_splits(records, groups, seed=7) == first
    assert assign_splits(records, groups, seed=8) != first

    excluded = frozenset({groups[0]})
    with_exclusion = assign_splits(records, groups, seed=7, excluded_groups=excluded)
    assert {s for g, s in zip(groups, with_exclusion, strict=True) if g == groups[0]} == {
        EXCLUDED}

    rows = manifest_rows(records, groups, first)
    text = manifest_csv(rows).decode()
    assert text.splitlines()[0] == "path,label,sha256,group,split"
    assert len(text.splitlines()) == len(records) + 1
    assert [row.path for row in rows] == sorted(r.path for r in records)

"""Training reads `.dcm` files in class folders by the contract's DICOM pixel rule, the one the
service applies: MR slices become the same canonical PNG; other objects are listed unreadable."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from dicom_files import (
    DICOM_MAKERS,
    mr_file,
    multiframe_file,
    scaled,
    sr_file,
)
from synthetic_images import make_slice

from model_contract.dicom import frame_png, read_dicom
from training.cli import main
from training.discovery import resolve_classes, scan_images
from training.grouping import group_images
from training.images import canonical_bytes

DICOM_KINDS = ("mr_16bit", "mr_monochrome1", "mr_rle", "mr_12bit_signed_rescale_window")


def grey(seed: int, tumor: bool = False, size: int = 48) -> np.ndarray:
    return np.asarray(make_slice(seed, size, tumor=tumor), dtype=np.uint8)


def write_dicom_dataset(root: Path, per_class: int) -> Path:
    """`root/<class>/<n>.dcm`, a mix of bit depths, photometric interpretations and encodings."""
    for class_index, name in enumerate(("Brain Tumor", "Healthy")):
        folder = root / name
        folder.mkdir(parents=True)
        for n in range(per_class):
            make = DICOM_MAKERS[DICOM_KINDS[n % len(DICOM_KINDS)]]
            image = grey(20_000 * (class_index + 1) + n, tumor=class_index == 0)
            (folder / f"{n:03d}.dcm").write_bytes(make(image))
    return root


def test_scan_reads_mr_dicom_by_the_contract_rule_and_lists_the_rest(tmp_path: Path) -> None:
    data = write_dicom_dataset(tmp_path / "data", per_class=10)
    refused = {
        "ct.dcm": mr_file(scaled(grey(1), 12), bits_stored=12, modality="CT"),
        "report.dcm": sr_file(),
        "stack.dcm": multiframe_file([grey(2), grey(3)]),
    }
    for name, content in refused.items():
        (data / "Healthy" / name).write_bytes(content)
    result = scan_images(resolve_classes(data))
    assert len(result.records) == 20
    for record in result.records:
        raw = (data / record.path).read_bytes()
        assert record.data == frame_png(read_dicom(raw).frames[0]) == canonical_bytes(raw)
        assert (record.metadata.format, record.metadata.mode) == ("DICOM", "L")
        assert (record.metadata.width, record.metadata.height) == (48, 48)
    reasons = {Path(item.path).name: item.reason for item in result.unreadable}
    assert "CT" in reasons["ct.dcm"]
    assert "no pixel data" in reasons["report.dcm"]
    assert "multi-frame" in reasons["stack.dcm"]


def test_slices_of_one_study_share_a_group(tmp_path: Path) -> None:
    data = write_dicom_dataset(tmp_path / "data", per_class=10)
    study = "1.2.826.0.1.3680043.8.498.4242"
    for n in range(3):  # three distinct slices of one study, beside ten of their own
        stored = scaled(grey(30_000 + n), 16)
        (data / "Healthy" / f"study-{n}.dcm").write_bytes(mr_file(stored, study_uid=study))
    result = scan_images(resolve_classes(data))
    groups = dict(zip([r.path for r in result.records], group_images(result.records).groups,
                      strict=True))
    assert len({groups[f"Healthy/study-{n}.dcm"] for n in range(3)}) == 1
    assert len(set(groups.values())) == 20 + 1


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_train_runs_on_a_folder_of_dicom_files(tmp_path: Path) -> None:
    data = write_dicom_dataset(tmp_path / "data", per_class=16)
    models, run = tmp_path / "models", tmp_path / "run"
    code = main(["train", "--data", str(data), "--out", str(models), "--run-dir", str(run),
                 "--epochs", "1", "--image-size", "32", "--bootstrap-resamples", "50",
                 "--folds", "2", "--publish-anyway"])  # a one-epoch model is below the guard
    assert code == 0
    assert (models / "brain-tumor-cnn" / "1" / "saved_model.pb").is_file()
    manifest = list(csv.DictReader((run / "manifest.csv").open()))
    assert len(manifest) == 32 and all(row["path"].endswith(".dcm") for row in manifest)

"""A tiny real run: train, export, reload the SavedModel and evaluate it through the CLI."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from synthetic_images import make_slice, write_dataset

from model_contract import read_card
from training.cli import main
from training.discovery import resolve_classes, scan_images
from training.export import load_signature
from training.fitting import TrainingConfig
from training.preprocessing import make_preprocess_fn
from training.publishing import PublishPolicy
from training.splitting import SplitFractions
from training.train_run import TrainOptions, run_training

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRAIN_PLOTS = ("reliability_before_after.png", "roc.png", "pr.png", "confusion_matrix.png",
               "calibration.png")
METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc", "pr_auc", "brier")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = write_dataset(tmp_path_factory.mktemp("tiny") / "data", per_class=24, size=48)
    (data / "Healthy" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    return data


def _load(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def _assert_sane_metrics(metrics: dict[str, Any], n: int) -> None:
    assert metrics["split"] == "test"
    assert metrics["n"] == n == metrics["n_positive"] + metrics["n_negative"]
    assert 0.0 <= metrics["threshold"] <= 1.0
    for name in METRICS:
        value, (low, high) = metrics[name]["value"], metrics[name]["ci95"]
        assert 0.0 <= low <= value <= high <= 1.0, (name, metrics[name])
    counts = metrics["confusion_matrix"]
    assert sum(counts[k]["value"] for k in ("tn", "fp", "fn", "tp")) == n


def _assert_pngs(folder: Path, names: tuple[str, ...]) -> None:
    for name in names:
        data = (folder / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5_000, name


def _two_fold_command(data: Path, models: Path, run: Path, resamples: str,
                      *extra: str) -> list[str]:
    """`train` with 2 folds of 2 epochs at 32 px, published whatever it scores."""
    return ["train", "--data", str(data), "--out", str(models), "--run-dir", str(run),
            "--epochs", "2", "--image-size", "32", "--bootstrap-resamples", resamples,
            "--folds", "2", "--publish-anyway", *extra]


def test_tiny_run_trains_exports_and_evaluates_through_the_cli(
    tiny_data: Path, tmp_path: Path
) -> None:
    models, run = tmp_path / "models", tmp_path / "run"
    assert main(_two_fold_command(tiny_data, models, run, "200", "--flip-tta")) == 0

    version_dir = models / "brain-tumor-cnn" / "1"
    assert (version_dir / "saved_model.pb").is_file()
    report = _load(run / "report.json")
    card = read_card(version_dir)
    manifest = list(csv.DictReader((run / "manifest.csv").open()))
    test_paths = sorted(row["path"] for row in manifest if row["split"] == "test")
    # The version carries the test split's plots, named by its card (the /model page's).
    plots = card.extra["plots"]
    assert set(plots) == {"roc", "pr", "confusion_matrix", "calibration", "reliability"}
    for relative in plots.values():
        assert (version_dir / relative).read_bytes() == (run / Path(relative).name).read_bytes()

    # The report: data, groups, split, training, test metrics, baseline, plots.
    assert report["data"]["readable_images"] == {"Healthy": 24, "Brain Tumor": 24}
    [unreadable] = report["data"]["unreadable_files"]
    assert unreadable["path"] == "Healthy/corrupt.jpg" and unreadable["reason"]
    assert "Healthy/corrupt.jpg" not in {row["path"] for row in manifest}
    assert report["grouping"]["groups"] == 48
    assert {row["split"] for row in manifest} == {"train", "validation", "test"}
    _assert_folds(run, manifest, report)
    _assert_sane_metrics(report["test"]["metrics"], len(test_paths))
    _assert_sane_metrics(report["baseline_metadata_only"]["metrics"], len(test_paths))
    _assert_pngs(run, TRAIN_PLOTS)
    assert report["model"]["export_max_abs_difference"] <= 1e-5
    assert [p.name for p in (models / "brain-tumor-cnn").iterdir()] == ["1"]  # no leftovers

    # The card carries what the service shows.
    assert card.version == 1 and card.name == "brain-tumor-cnn"
    assert card.operating_points is not None and card.operating_points.default == "screening"
    assert set(card.operating_points.names) == {"screening", "balanced"}
    assert card.threshold == card.operating_points.points["screening"].threshold
    assert card.threshold == report["test"]["metrics"]["threshold"]
    assert card.metrics == report["test"]["metrics"]
    assert card.data_fingerprint == hashlib.sha256((run / "manifest.csv").read_bytes()
                                                   ).hexdigest()
    assert card.architecture is not None
    assert card.architecture["parameters"] > 0 and card.architecture["flops_per_image"] > 0
    assert card.architecture["members"] == 2 and card.architecture["flip_tta"] is True
    assert card.input.preprocessing == {"image_size": 32, "channels": 1, "crop_to_brain": True}
    assert card.intended_use is not None and "not a diagnostic device" in card.intended_use
    assert card.training is not None and card.training["architecture"] == "compact"
    assert card.library_versions is not None and "tensorflow" in card.library_versions
    assert card.explain is not None and card.explain.signature == "explain"  # by default
    # One gate per member, each fitted on its training folds and thresholded on its held-out
    # fold; the union's score is shifted so its threshold is 0 ("validation": held-out folds).
    gate = card.input_gate
    assert gate is not None and gate.output_key == "brain_mri_score"
    assert gate.acceptance is not None and gate.acceptance.validation is not None
    assert gate.acceptance.validation >= 0.995 and gate.target_acceptance == 0.995
    assert gate.ood_refusal is None  # no --ood given
    assert report["input_gate"]["acceptance"]["validation"] == gate.acceptance.validation
    assert "never saw" in report["input_gate"]["threshold_chosen_on"]
    assert gate.threshold == 0.0 and gate.method.endswith("all of 2")

    # evaluate reloads the SavedModel and reproduces the run's test figures exactly.
    evaluated = tmp_path / "evaluated"
    assert main(["evaluate", "--model", str(models / "brain-tumor-cnn"), "--data",
                 str(tiny_data), "--report", str(evaluated), "--split-manifest",
                 str(run / "manifest.csv"), "--split", "test",
                 "--bootstrap-resamples", "200"]) == 0
    again = _load(evaluated / "report.json")
    assert again["test"]["metrics"] == report["test"]["metrics"]
    assert again["baseline_metadata_only"]["metrics"] == report["baseline_metadata_only"][
        "metrics"]
    _assert_pngs(evaluated, TRAIN_PLOTS[1:])
    assert again["input_gate"]["acceptance"] == report["input_gate"]["acceptance"]["test"]

    # The re-encoded robustness check scores the same files after re-encoding.
    reencoded = tmp_path / "reencoded"
    assert main(["evaluate", "--model", str(version_dir), "--data", str(tiny_data), "--report",
                 str(reencoded), "--split-manifest", str(run / "manifest.csv"),
                 "--reencode-png256", "--bootstrap-resamples", "200"]) == 0
    robust = _load(reencoded / "report.json")
    assert robust["reencode"] is not None
    _assert_sane_metrics(robust["test"]["metrics"], len(test_paths))
    predictions = list(csv.DictReader((reencoded / "predictions.csv").open()))
    assert sorted(row["path"] for row in predictions) == test_paths

    # evaluate --ood: the gate's refusal per kind; saturated colour noise always fails it.
    ood = _write_ood_set(tmp_path / "ood")
    gated = tmp_path / "gated"
    assert main(["evaluate", "--model", str(version_dir), "--data", str(tiny_data), "--report",
                 str(gated), "--split-manifest", str(run / "manifest.csv"), "--ood", str(ood),
                 "--bootstrap-resamples", "50"]) == 0
    kinds = _load(gated / "report.json")["input_gate"]["ood"]["by_kind"]
    assert kinds["natural_photos"] == {"role": "far", "n": 3, "refused": 3, "refusal": 1.0}
    assert kinds["head_ct"]["role"] == "near" and kinds["head_ct"]["n"] == 1
    assert kinds["brain_mr_control"]["role"] == "control"


def _write_ood_set(folder: Path) -> Path:
    rng = np.random.default_rng(3)
    for kind, images in {
        "natural_photos": [Image.fromarray(rng.integers(0, 256, (40, 50, 3), np.uint8))
                           for _ in range(3)],
        "head_ct": [make_slice(901).convert("RGB").point(lambda v: 255 - v)],
        "brain_mr_control": [make_slice(902)],
    }.items():
        (folder / kind).mkdir(parents=True)
        for index, image in enumerate(images):
            image.save(folder / kind / f"{index}.png")
    return folder


def _assert_folds(run: Path, manifest: list[dict[str, str]], report: dict[str, Any]) -> None:
    """Every development slice is in one fold, whole groups per fold, and scored out of fold."""
    development = {row["path"]: row["group"] for row in manifest
                   if row["split"] in ("train", "validation")}
    folds = list(csv.DictReader((run / "folds.csv").open()))
    assert sorted(row["path"] for row in folds) == sorted(development)
    fold_of_group: dict[str, str] = {}
    for row in folds:
        assert fold_of_group.setdefault(row["group"], row["fold"]) == row["fold"]
    assert {row["fold"] for row in folds} == {"0", "1"}
    for k in (1, 2):
        assert (run / "folds" / f"fold-{k}" / "final.weights.h5").is_file()
    assert report["out_of_fold"]["metrics"]["n"] == len(development)
    assert [f["resumed"] for f in report["members"]["per_fold"]] == [False, False]
    assert report["calibration"]["temperature"] > 0 and "intercept" in report["calibration"]


def test_a_stopped_run_resumes_without_refitting_finished_folds(
    tiny_data: Path, tmp_path: Path
) -> None:
    models, run = tmp_path / "models", tmp_path / "run"
    command = _two_fold_command(tiny_data, models, run, "50")
    assert main(command) == 0
    first = _load(run / "report.json")
    weights = (run / "folds" / "fold-1" / "final.weights.h5").read_bytes()
    (run / "report.json").unlink()  # as if the run had stopped before its report
    assert main(command) == 0
    again = _load(run / "report.json")
    assert [f["resumed"] for f in again["members"]["per_fold"]] == [True, True]
    assert (run / "folds" / "fold-1" / "final.weights.h5").read_bytes() == weights
    assert again["test"]["metrics"] == first["test"]["metrics"]
    assert again["model"]["version"] == 2


def test_exported_signature_equals_the_in_memory_model(tiny_data: Path, tmp_path: Path) -> None:
    # The seed design has no batch normalisation, so two epochs already give outputs that
    # differ from image to image: the comparison below is not between constants.
    layout = resolve_classes(tiny_data)
    result = run_training(TrainOptions(
        layout=layout, out_dir=tmp_path / "models", run_dir=tmp_path / "run", name="check",
        training=TrainingConfig(architecture="seed", epochs=2, image_size=32, seed=1),
        fractions=SplitFractions(), max_distance=6, drop_label_conflicts=False,
        min_images_per_class=10, bootstrap_resamples=50, folds=2,
        publish=PublishPolicy(anyway=True),
    ))
    assert result.version_dir is not None
    images = [record.data for record in scan_images(layout).records]
    config = TrainingConfig(architecture="seed", image_size=32).preprocess()

    exported = load_signature(result.version_dir)(images)
    pixels = make_preprocess_fn(config)(tf.constant(images))
    in_memory = np.asarray(result.model(pixels, training=False)).reshape(-1)

    assert exported.shape == (48,)
    assert float(np.ptp(in_memory)) > 1e-3
    np.testing.assert_allclose(exported, in_memory, rtol=0, atol=1e-5)

"""model_contract/: the one scanner, the one card reader and writer, the canonical-bytes rule's
home, and docs/model-contract.md agreeing with the constants."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import model_contract
from model_contract import (
    EXPLAIN_SIGNATURE,
    GATE_OUTPUT_KEY,
    HEATMAP_KEY,
    INPUT_KEY,
    OUTPUT_KEY,
    SERVING_SIGNATURE,
    CardError,
    ExplainSpec,
    InputGate,
    LayoutError,
    ModelCard,
    OperatingPoint,
    card_from_dict,
    card_to_dict,
    find_version_dir,
    next_version,
    read_card,
    resolve_version_dir,
    version_numbers,
    write_card,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "brain-tumor-cnn" / "1"  # the first version: no gate, no explain
LATEST = REPO / "models" / "brain-tumor-cnn" / "3"  # the served one: an ensemble, gate, explain
GATE = {
    "method": "mahalanobis-penultimate+image-stats",
    "description": "distance of the slice's features from the training slices'",
    "output_key": "brain_mri_score",
    "threshold": -12.3,
    "target_acceptance": 0.995,
    "fitted_on": "training split: 2597 slices of brain MRI only",
    "acceptance": {"validation": 0.995, "test": 0.996},
    "ood_refusal": {"overall": 0.97, "by_kind": {"natural_photos": 0.99},
                    "near_ood": {"head_ct": 0.8}},
}
POINTS = {"default": "screening",
          "screening": {"threshold": 0.31, "rule": "sensitivity >= 0.95", "summary": "flags..",
                        "test": {"sensitivity": {"value": 0.95, "ci95": [0.93, 0.97]}}},
          "balanced": {"threshold": 0.55}}
EXPLAIN = {"signature": "explain", "method": "grad-cam", "layer": "stage4_conv",
           "heatmap_key": "heatmap"}


def test_the_constants_are_the_agreed_names() -> None:
    assert (SERVING_SIGNATURE, EXPLAIN_SIGNATURE) == ("serving_default", "explain")
    assert (INPUT_KEY, OUTPUT_KEY, GATE_OUTPUT_KEY, HEATMAP_KEY) == (
        "image_bytes", "tumor_probability", "brain_mri_score", "heatmap")


def test_the_doc_names_every_constant_and_card_field() -> None:
    doc = (REPO / "docs" / "model-contract.md").read_text()
    for name in (SERVING_SIGNATURE, EXPLAIN_SIGNATURE, INPUT_KEY, OUTPUT_KEY, GATE_OUTPUT_KEY,
                 HEATMAP_KEY, str(model_contract.MODEL_CARD_PATH)):
        assert f"`{name}`" in doc or f'"{name}"' in doc, name
    example = json.loads(re.search(r"```json\n(.*?)```", doc, re.DOTALL).group(1))  # type: ignore[union-attr]
    card = card_from_dict(example)
    assert not card.extra, f"the doc's example has keys the schema lacks: {card.extra}"
    documented = set(example)
    schema = {f.name for f in dataclasses.fields(ModelCard)} - {"extra"}
    assert documented == schema
    assert set(example["input_gate"]) == {f.name for f in dataclasses.fields(InputGate)}
    assert set(example["explain"]) == {f.name for f in dataclasses.fields(ExplainSpec)}
    screening = example["operating_points"]["screening"]
    assert set(screening) == {f.name for f in dataclasses.fields(OperatingPoint)}


def test_the_shipped_card_reads_and_writes_back_unchanged(tmp_path: Path) -> None:
    card = read_card(SHIPPED)
    assert (card.name, card.version, card.input.signature) == ("brain-tumor-cnn", 1,
                                                               SERVING_SIGNATURE)
    assert card.input_gate is None and card.explain is None  # an old card
    original = json.loads((SHIPPED / "assets" / "model_card.json").read_text())
    assert card_to_dict(card) == original
    write_card(tmp_path, card)
    assert json.loads((tmp_path / "assets" / "model_card.json").read_text()) == original


def test_the_served_card_has_its_gate_and_explain_sections_and_writes_back_unchanged(
    tmp_path: Path,
) -> None:
    card = read_card(LATEST)
    assert (card.name, card.version) == ("brain-tumor-cnn", 3)
    assert card.input_gate is not None and card.input_gate.output_key == GATE_OUTPUT_KEY
    assert card.operating_points is not None and card.operating_points.default == "screening"
    assert card.threshold == card.operating_points.points["screening"].threshold
    assert card.explain is not None and card.explain.signature == EXPLAIN_SIGNATURE
    original = json.loads((LATEST / "assets" / "model_card.json").read_text())
    assert card_to_dict(card) == original
    write_card(tmp_path, card)
    assert json.loads((tmp_path / "assets" / "model_card.json").read_text()) == original


def test_optional_sections_are_typed_and_survive_a_write(tmp_path: Path) -> None:
    raw = {**json.loads((SHIPPED / "assets" / "model_card.json").read_text()),
           "input_gate": GATE, "explain": EXPLAIN, "operating_points": POINTS,
           "a_future_section": {"kept": True}}
    card = card_from_dict(raw)
    assert card.input_gate is not None and card.input_gate.threshold == -12.3
    assert card.input_gate.acceptance is not None and card.input_gate.acceptance.test == 0.996
    assert card.input_gate.ood_refusal is not None
    assert card.input_gate.ood_refusal.by_kind == {"natural_photos": 0.99}
    assert card.input_gate.ood_refusal.near_ood == {"head_ct": 0.8}
    assert card.explain == ExplainSpec(layer="stage4_conv")
    assert card.operating_points is not None
    assert card.operating_points.names == ("screening", "balanced")
    assert card.operating_point() == ("screening", 0.31)
    assert card.operating_point("balanced") == ("balanced", 0.55)
    assert card.label_for(0.4, 0.31) == "tumor" and card.label_for(0.4, 0.55) == "healthy"
    assert card.extra == {"a_future_section": {"kept": True}}  # not in the schema: kept
    version_dir = tmp_path / "m" / "3"
    write_card(version_dir, card)
    assert read_card(version_dir) == card
    assert card_to_dict(read_card(version_dir)) == raw


@pytest.mark.parametrize("change, message", [
    ({"positive_class": "cancer"}, "positive_class"),
    ({"threshold": 1.5}, "threshold"),
    ({"classes": ["a"]}, "two names"),
    ({"input_gate": {"method": "x"}}, "threshold"),
    ({"operating_points": {"default": "sensitive", "screening": {"threshold": 0.3}}},
     "sensitive"),
    ({"operating_points": {"default": "screening", "screening": {"threshold": 3}}},
     "threshold"),
])
def test_invalid_cards_are_refused_with_the_reason(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    raw = {**json.loads((SHIPPED / "assets" / "model_card.json").read_text()), **change}
    write_path = tmp_path / "m" / "1" / "assets" / "model_card.json"
    write_path.parent.mkdir(parents=True)
    write_path.write_text(json.dumps(raw))
    with pytest.raises(CardError, match=message):
        read_card(tmp_path / "m" / "1")


def test_missing_card_is_a_card_error(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="missing"):
        read_card(tmp_path)


def test_one_scanner_for_every_question(tmp_path: Path) -> None:
    root = tmp_path / "models" / "m"
    assert version_numbers(root) == [] and next_version(root) == 1
    for name in ("1", "10", "9", "0", "latest", ".staging-abc"):
        (root / name).mkdir(parents=True)
    (root / "11").write_text("a file, not a version")
    assert version_numbers(root) == [1, 9, 10]
    assert next_version(root) == 11
    assert find_version_dir(tmp_path / "models", None) == root / "10"
    assert find_version_dir(tmp_path / "models", "m") == root / "10"
    with pytest.raises(LayoutError, match="no model named"):
        find_version_dir(tmp_path / "models", "other")
    (tmp_path / "models" / "n").mkdir()
    with pytest.raises(LayoutError, match="MRI_MODEL_NAME"):
        find_version_dir(tmp_path / "models", None)
    with pytest.raises(LayoutError, match="not an exported model"):
        resolve_version_dir(root)  # version 10 has no saved_model.pb
    assert resolve_version_dir(SHIPPED.parent) == LATEST
    assert resolve_version_dir(SHIPPED) == SHIPPED


def test_importing_the_contract_loads_no_tensorflow() -> None:
    code = (
        "import sys, model_contract;"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', "
        "'service', 'training')], 'heavy or cross-package import'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_both_packages_take_the_contract_from_one_place() -> None:
    """No second scanner, card reader or copy of the rule in service/ or training/."""
    duplicates = re.compile(
        r"def (find_version_dir|next_version|resolve_version_dir|read_model_card|read_card|"
        r"_to_8bit|to_8bit|passes_through)\b|\"serving_default\"|\"tumor_probability\"|"
        r"\"image_bytes\"|EXIF_ORIENTATION_TAG = "
    )
    for package in ("service", "training"):
        for path in (REPO / package).rglob("*.py"):
            assert not duplicates.search(path.read_text()), path

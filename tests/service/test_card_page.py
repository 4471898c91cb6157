"""The model card page and the operating point's plain words, from the shipped model's card:
every figure comes from the card (test recall 0.898, specificity 0.957 with their intervals)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from model_contract import ModelCard, OperatingPoint, OperatingPoints
from model_contract.card import read_card
from service.card_page import render_card_page
from service.operating_points import SINGLE_POINT_NAME, operating_points

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "brain-tumor-cnn" / "1"


def shipped_card() -> ModelCard:
    return read_card(SHIPPED)


def test_the_single_threshold_is_the_models_operating_point() -> None:
    [point] = operating_points(shipped_card())
    assert point.name == SINGLE_POINT_NAME and point.is_default
    assert round(point.threshold, 3) == 0.861
    assert point.plain_words() == (
        "On the test split it flags about 90 of 100 (95% interval 86 to 93) tumor slices; "
        "about 4 of 100 (95% interval 2 to 7) healthy slices are flagged too.")


def test_named_operating_points_default_first() -> None:
    card = dataclasses.replace(shipped_card(), operating_points=OperatingPoints("screening", {
        "balanced": OperatingPoint(0.86, test={"sensitivity": {"value": 0.9},
                                               "specificity": {"value": 0.96}}),
        "screening": OperatingPoint(0.3, test={
            "sensitivity": {"value": 0.95, "ci95": [0.92, 0.97]},
            "specificity": {"value": 0.91}}),
        "unmeasured": OperatingPoint(0.5),
    }))
    points = operating_points(card)
    assert [(p.name, p.is_default) for p in points] == [
        ("screening", True), ("balanced", False), ("unmeasured", False)]
    assert points[0].plain_words().startswith(
        "On the test split it flags about 95 of 100 (95% interval 92 to 97) tumor slices; "
        "about 9 of 100 healthy")
    assert "holds no measured sensitivity or specificity" in points[2].plain_words()
    page = render_card_page(card, SHIPPED, None)
    assert "screening (default)" in page and "<td>0.860</td>" in page


def test_a_card_without_measurements_says_so() -> None:
    card = dataclasses.replace(shipped_card(), metrics=None)
    [point] = operating_points(card)
    assert "holds no measured sensitivity or specificity" in point.plain_words()


def test_the_page_shows_metrics_with_intervals_beside_the_baseline() -> None:
    page = render_card_page(shipped_card(), SHIPPED, "1/2/3/4")
    assert "<td>0.925 (0.904 to 0.945)</td>" in page  # accuracy
    assert "<td>0.900 (0.875 to 0.927)</td>" in page  # the metadata-only baseline's
    assert "<td>31 (21 to 42)</td>" in page  # missed tumor slices
    assert "561 slices (303" in page
    assert "<tr><th scope=\"row\">test</th><td>258</td><td>303</td><td>561</td><td>203</td></tr>" \
        in page  # slices per split: Healthy, Brain Tumor, images, groups
    assert "split / counts" not in page
    assert "73c24a64c80b004109705bc30da289035f4c9821bce1aaf28147f9f338a387cc" in page
    assert "1/2/3/4" in page
    assert "about 90 of 100 (95% interval 86 to 93) tumor slices" in page
    assert "This model has no input gate" in page  # the shipped version predates the gate


def test_the_served_version_shows_its_own_test_plots() -> None:
    served = SHIPPED.parent / "3"
    html = render_card_page(read_card(served), served, None)
    for name in ("roc", "pr", "confusion_matrix", "calibration", "reliability"):
        assert f'src="/model/plots/{name}"' in html, name
    # Version 1 predates the plots in the version folder: its page has none to show.
    assert "/model/plots/" not in render_card_page(shipped_card(), SHIPPED, None)

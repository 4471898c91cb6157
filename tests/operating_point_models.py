"""The test model with named operating points in its card, as training writes them: `screening`
(the default, with measured test figures) and `balanced`, at the two ends of [0, 1] so that
every image is flagged at one and none at the other, whatever the untrained model answers."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from model_contract import OperatingPoint, OperatingPoints, read_card, write_card

SCREENING, BALANCED = 0.0, 1.0
NAMES = ["screening", "balanced"]
SCREENING_TEST = {"sensitivity": {"value": 0.95, "ci95": [0.92, 0.97]},
                  "specificity": {"value": 0.91, "ci95": [0.88, 0.94]}}


def with_operating_points(exported_model_dir: Path, into: Path) -> Path:
    """A copy of the models folder whose test-model/1 card names the two points."""
    models = into / "models"
    shutil.copytree(exported_model_dir, models)
    version_dir = models / "test-model" / "1"
    points = OperatingPoints("screening", {
        "screening": OperatingPoint(SCREENING, rule="sensitivity >= 0.95",
                                    summary="flags about 95 of 100 tumor slices",
                                    test=SCREENING_TEST),
        "balanced": OperatingPoint(BALANCED, rule="Youden's J"),
    })
    card = dataclasses.replace(read_card(version_dir), threshold=SCREENING,
                               operating_points=points)
    write_card(version_dir, card)
    return models

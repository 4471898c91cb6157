"""Model folders with several versions of the test model, published as training publishes them
(written to a hidden folder, then renamed into place)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

MODEL = "test-model"


def models_with_version_1(exported_model_dir: Path, into: Path) -> Path:
    shutil.copytree(exported_model_dir / MODEL / "1", into / MODEL / "1")
    return into


def publish(models: Path, version: int, corrupt: bool = False) -> Path:
    """Version `version` of the test model: version 1's weights under a card naming `version`;
    `corrupt` replaces its SavedModel with bytes no loader accepts."""
    root = models / MODEL
    staging = root / f".staging-{version}"
    shutil.copytree(root / "1", staging)
    card_path = staging / "assets" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["version"] = version
    card_path.write_text(json.dumps(card))
    if corrupt:
        (staging / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    return staging.rename(root / str(version))

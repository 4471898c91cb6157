"""The `train` service (profile `train`) of docker-compose.yml: a tiny real training run in the
training image, on a mounted data folder, as a non-root user, that adds the next version to the
mounted models folder and leaves the existing version alone."""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from container_helpers import Docker, record_timing, run, run_compose, unavailable
from PIL import Image, ImageDraw

pytestmark = pytest.mark.container

TRAIN_UID = 10001  # the image's own user; the mounted folders are opened up for it below
PER_CLASS = 24


def write_slices(root: Path) -> None:
    """Two class folders of small synthetic slices; tumors carry a bright blob."""
    for class_index, name in enumerate(("Brain Tumor", "Healthy")):
        folder = root / name
        folder.mkdir(parents=True)
        for n in range(PER_CLASS):
            rng = np.random.default_rng(1000 * class_index + n)
            image = Image.new("L", (48, 48), 0)
            draw = ImageDraw.Draw(image)
            draw.ellipse((4, 3, 44, 45), fill=int(rng.integers(70, 130)))
            for _ in range(6):
                x, y = rng.uniform(12, 36, size=2)
                r = rng.uniform(2, 6)
                draw.ellipse((x - r, y - r, x + r, y + r), fill=int(rng.integers(20, 200)))
            if class_index == 0:
                x, y = rng.uniform(18, 30, size=2)
                draw.ellipse((x - 7, y - 7, x + 7, y + 7), fill=250)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG" if n % 2 else "JPEG")
            (folder / f"{n}.{'png' if n % 2 else 'jpg'}").write_bytes(buffer.getvalue())


@pytest.fixture(scope="module")
def train_image(docker: Docker) -> str:
    image = f"brain-mri-classifier-train:{docker.image_tag}"
    if run(["docker", "image", "inspect", image], timeout=30).returncode != 0:
        unavailable(
            f"image {image} is not built; build it first (`.ci/container` does), e.g. "
            "DOCKER_BUILDKIT=0 docker build --target train "
            "-t brain-mri-classifier-train:latest ."
        )
    return image


def test_train_profile_writes_the_next_version(
    docker: Docker, train_image: str, tmp_path: Path
) -> None:
    data, models, runs = tmp_path / "data", tmp_path / "models", tmp_path / "runs"
    write_slices(data)
    existing = models / "brain-tumor-cnn" / "1"
    existing.mkdir(parents=True)
    (existing / "marker").write_text("version 1, not to be touched")
    runs.mkdir()
    for folder in (models, models / "brain-tumor-cnn", runs):
        folder.chmod(0o777)
    env = {key: value for key, value in os.environ.items() if not key.startswith("MRI_")}
    env.update(
        TRAIN_DATA=str(data), MODELS_DIR=str(models), TRAIN_RUNS=str(runs),
        TRAIN_UID=str(TRAIN_UID), TRAIN_GID=str(TRAIN_UID), IMAGE_TAG=docker.image_tag,
    )
    project = f"mri-ct-{uuid.uuid4().hex[:8]}"
    command = ["train", "--data", "/data", "--out", "/app/models", "--folds", "2", "--epochs", "2",
               "--image-size", "32", "--bootstrap-resamples", "200", "--publish-anyway"]
    try:
        result = run_compose(
            docker, project, env, "--profile", "train", "run", "--rm", "-T", "train", *command,
            timeout=600,
        )
    finally:
        run_compose(docker, project, env, "down", "--remove-orphans", timeout=120)
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"

    version = models / "brain-tumor-cnn" / "2"
    assert (version / "saved_model.pb").is_file()
    card = json.loads((version / "assets" / "model_card.json").read_text())
    assert (card["name"], card["version"]) == ("brain-tumor-cnn", 2)
    assert (existing / "marker").read_text() == "version 1, not to be touched"
    assert version.stat().st_uid == TRAIN_UID
    [run_dir] = [p for p in runs.iterdir() if p.is_dir()]
    assert (run_dir / "report.json").is_file()
    record_timing(train_profile_run="ok")

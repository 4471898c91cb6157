"""No skew: for the same file the service answers what the training package's evaluation path
(canonical_bytes, then the exported signature via load_signature) computes, to 1e-5."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from training.export import load_signature
from training.images import canonical_bytes

SAMPLES = [
    "png_L", "png_RGB", "png_RGBA", "png_P", "png_1", "png_I16", "jpeg_L", "jpeg_RGB",
    "jpeg_CMYK", "jpeg_exif_rotated", "tiff_L", "tiff_I16", "tiff_CMYK", "gif_P", "webp_RGB",
]


def test_service_equals_the_training_evaluation_path(
    client: TestClient, sample_images: dict[str, bytes], exported_version_dir: Path
) -> None:
    evaluate = load_signature(exported_version_dir)
    expected = evaluate([canonical_bytes(sample_images[name]) for name in SAMPLES])
    single = [
        client.post("/predict", files={"file": (name, sample_images[name])}).json()
        for name in SAMPLES
    ]
    batch = client.post(
        "/predict/batch", files=[("files", (name, sample_images[name])) for name in SAMPLES]
    ).json()["results"]
    for index, name in enumerate(SAMPLES):
        assert single[index]["tumor_probability"] == pytest.approx(expected[index], abs=1e-5), name
        assert batch[index]["tumor_probability"] == pytest.approx(expected[index], abs=1e-5), name
    assert len({round(float(p), 4) for p in expected}) > len(SAMPLES) // 2  # not a constant

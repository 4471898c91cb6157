"""The `explain` signature of the exported test model: shape, mapping back onto the upload's
grid, agreement with `serving_default`, and Grad-CAM's own definition."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import encode, synthetic_slice
from PIL import Image

from training.export import load_signature, read_model_card
from training.images import canonical_bytes


@pytest.fixture(scope="module")
def signatures(exported_version_dir: Path) -> Any:
    import tensorflow as tf

    return tf.saved_model.load(str(exported_version_dir)).signatures


def _explain(signatures: Any, data: bytes) -> tuple[float, np.ndarray]:
    import tensorflow as tf

    outputs = signatures["explain"](image_bytes=tf.constant(data))
    return float(outputs["tumor_probability"].numpy()), outputs["heatmap"].numpy()


def _framed_slice(seed: int, width: int, height: int, margin: int) -> np.ndarray:
    """A synthetic slice inside a black frame, so the crop box is known."""
    framed = np.zeros((height + 2 * margin, width + 2 * margin), dtype=np.uint8)
    framed[margin:-margin, margin:-margin] = synthetic_slice(seed, (width, height))
    return framed


def test_explain_signature_is_exported_with_its_card_section(
    signatures: Any, exported_version_dir: Path
) -> None:
    explain = signatures["explain"]
    (spec,) = explain.structured_input_signature[1].values()
    assert spec.shape.rank == 0 and spec.dtype.name == "string" and spec.name == "image_bytes"
    outputs = explain.structured_outputs
    assert set(outputs) == {"tumor_probability", "heatmap"}
    assert outputs["tumor_probability"].shape.rank == 0
    assert outputs["heatmap"].shape.rank == 2 and outputs["heatmap"].dtype.name == "float32"
    card = read_model_card(exported_version_dir)["explain"]
    assert card["signature"] == "explain" and card["method"] == "grad-cam"
    assert card["heatmap_key"] == "heatmap" and card["layer"]


@pytest.mark.parametrize(("width", "height"), [(97, 61), (61, 97), (33, 33), (255, 129)])
def test_heatmap_covers_the_decoded_image_and_is_normalised(
    signatures: Any, width: int, height: int
) -> None:
    data = encode(Image.fromarray(synthetic_slice(width, (width, height)), "L"), "PNG")
    _, heatmap = _explain(signatures, data)
    assert heatmap.shape == (height, width)
    assert heatmap.min() >= 0.0
    assert heatmap.max() == pytest.approx(1.0) or not heatmap.any()


def test_heatmap_follows_exif_orientation(
    signatures: Any, sample_images: dict[str, bytes]
) -> None:
    """The canonical bytes of an EXIF-rotated JPEG are the upright image: the heatmap is too."""
    rotated = sample_images["jpeg_exif_rotated"]
    stored = Image.open(io.BytesIO(rotated))
    _, heatmap = _explain(signatures, canonical_bytes(rotated))
    assert heatmap.shape == (stored.width, stored.height)  # 90 degrees: sides swap


def test_heatmap_is_zero_outside_the_crop_box(signatures: Any) -> None:
    margin = 9
    data = encode(Image.fromarray(_framed_slice(3, 70, 90, margin), "L"), "PNG")
    _, heatmap = _explain(signatures, data)
    inside = np.zeros(heatmap.shape, dtype=bool)
    inside[margin:-margin, margin:-margin] = True
    assert heatmap.any()
    assert not heatmap[~inside].any()


def test_explain_probability_equals_serving_default(
    signatures: Any, exported_version_dir: Path
) -> None:
    images = [encode(Image.fromarray(synthetic_slice(seed, (90 + seed, 70)), "L"), "PNG")
              for seed in range(12)]
    batch = load_signature(exported_version_dir)(images)
    alone = [_explain(signatures, data)[0] for data in images]
    assert len({round(p, 4) for p in alone}) > 6  # the test model is image-dependent
    np.testing.assert_allclose(alone, batch, rtol=0, atol=1e-6)


def test_heatmap_is_grad_cam_of_the_tumor_logit(exported_model_dir: Path) -> None:
    """For global pooling then one dense unit, Grad-CAM reduces to ReLU(sum_k w_k A_k) (Zhou
    et al.'s CAM): check the exported map against that closed form on the same features."""
    import keras
    import tensorflow as tf

    from training.architectures import build_model
    from training.gradcam import make_explain_fn
    from training.preprocessing import PreprocessConfig, decode, input_box, to_pixels

    keras.utils.set_random_seed(1)
    config = PreprocessConfig(32, 1, False)
    model = build_model("compact", config, seed=1, augment=False)
    data = encode(Image.fromarray(synthetic_slice(5, (40, 40)), "L"), "PNG")
    heatmap = make_explain_fn(model, config)(tf.constant(data))["heatmap"].numpy()

    image = decode(tf.constant(data), config)
    pixels = to_pixels(image, input_box(image, config), config)[None]
    features = keras.Model(model.inputs, model.layers[-4].output)(pixels).numpy()[0]
    kernel = model.layers[-1].get_weights()[0][:, 0]
    cam = np.maximum(features @ kernel, 0.0)[..., None]
    expected = tf.image.resize(cam, [40, 40], "bilinear").numpy()[..., 0]
    expected = expected / expected.max()
    np.testing.assert_allclose(heatmap, expected, atol=1e-5)


def test_export_without_explain(tmp_path: Path) -> None:
    import keras

    from training.architectures import build_model
    from training.export import export_model
    from training.preprocessing import PreprocessConfig

    keras.utils.set_random_seed(0)
    config = PreprocessConfig(16, 1, True)
    model = build_model("compact", config, seed=0, augment=False)
    version = export_model(model, config, {}, tmp_path, "plain", with_explain=False)
    import tensorflow as tf

    assert list(tf.saved_model.load(str(version)).signatures) == ["serving_default"]
    assert "explain" not in read_model_card(version)

"""The `explain` signature of the exported test model: shape, mapping back onto the upload's
grid, agreement with `serving_default`, and Grad-CAM's own definition."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from model_contract import canonical_bytes, read_card
from training.export import load_signature


@pytest.fixture(scope="module")
def signatures(exported_version_dir: Path) -> Any:
    import tensorflow as tf

    return tf.saved_model.load(str(exported_version_dir)).signatures


def _explain(signatures: Any, data: bytes) -> tuple[float, np.ndarray]:
    import tensorflow as tf

    outputs = signatures["explain"](image_bytes=tf.constant(data))
    return float(outputs["tumor_probability"].numpy()), outputs["heatmap"].numpy()


SlicePng = Callable[[int, int, int], bytes]


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_explain_signature_is_exported_with_its_card_section(
    signatures: Any, exported_version_dir: Path
) -> None:
    explain = signatures["explain"]
    (spec,) = explain.structured_input_signature[1].values()
    assert spec.shape.rank == 0 and spec.dtype.name == "string" and spec.name == "image_bytes"
    outputs = explain.structured_outputs
    # The test model has an input gate: explain returns its score too, as serving_default does.
    assert set(outputs) == {"tumor_probability", "heatmap", "brain_mri_score"}
    assert outputs["tumor_probability"].shape.rank == 0
    assert outputs["brain_mri_score"].shape.rank == 0
    assert outputs["heatmap"].shape.rank == 2 and outputs["heatmap"].dtype.name == "float32"
    spec = read_card(exported_version_dir).explain
    assert spec is not None and spec.signature == "explain" and spec.method == "grad-cam"
    assert spec.heatmap_key == "heatmap" and spec.layer.startswith("re_lu")


@pytest.mark.parametrize(("width", "height"), [(97, 61), (61, 97), (33, 33), (255, 129)])
def test_heatmap_covers_the_decoded_image_and_is_normalised(
    signatures: Any, slice_png: SlicePng, width: int, height: int
) -> None:
    data = slice_png(width, width, height)
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


def test_heatmap_is_zero_outside_the_crop_box(signatures: Any, slice_png: SlicePng) -> None:
    """A slice inside a wide black frame: the crop box is at least the frame's inside."""
    margin = 9
    inner = np.asarray(Image.open(io.BytesIO(slice_png(3, 70, 90))))
    data = _png(np.pad(inner, margin))
    _, heatmap = _explain(signatures, data)
    inside = np.zeros(heatmap.shape, dtype=bool)
    inside[margin:-margin, margin:-margin] = True
    assert heatmap.any()
    assert not heatmap[~inside].any()


def test_explain_probability_equals_serving_default(
    signatures: Any, exported_version_dir: Path, slice_png: SlicePng
) -> None:
    images = [slice_png(seed, 90 + seed, 70) for seed in range(12)]
    batch = load_signature(exported_version_dir)(images)
    alone = [_explain(signatures, data)[0] for data in images]
    assert len({round(p, 4) for p in alone}) > 6  # the test model is image-dependent
    # Different graphs, batch of 1 against 12: oneDNN's kernels differ by batch size and CPU
    # (about 1e-6 on AVX-512 machines).
    np.testing.assert_allclose(alone, batch, rtol=0, atol=1e-5)


def test_heatmap_is_grad_cam_of_the_tumor_logit(slice_png: SlicePng) -> None:
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
    data = slice_png(5, 40, 40)
    last = model.layers[-4].name  # the ReLU before global pooling
    heatmap = make_explain_fn(model, config, [last])(tf.constant(data))["heatmap"].numpy()

    image = decode(tf.constant(data), config)
    pixels = to_pixels(image, input_box(image, config), config)[None]
    features = keras.Model(model.inputs, model.layers[-4].output)(pixels).numpy()[0]
    kernel = model.layers[-1].get_weights()[0][:, 0]
    cam = np.maximum(features @ kernel, 0.0)[..., None]
    expected = tf.image.resize(cam, [40, 40], "bilinear").numpy()[..., 0]
    expected = expected / expected.max()
    np.testing.assert_allclose(heatmap, expected, atol=1e-5)


def test_export_without_explain(unexplained_model_dir: Path) -> None:
    import tensorflow as tf

    version = unexplained_model_dir / "test-model" / "1"
    assert list(tf.saved_model.load(str(version)).signatures) == ["serving_default"]
    assert read_card(version).explain is None


def test_explain_reports_the_gate_score_it_is_given(slice_png: SlicePng) -> None:
    """With a gate, `explain` returns the gate's own score for the same bytes."""
    import keras
    import tensorflow as tf

    from training.architectures import build_model
    from training.gradcam import make_explain_fn
    from training.preprocessing import PreprocessConfig

    def byte_count(image_bytes: tf.Tensor) -> tf.Tensor:  # a stand-in scoring graph
        return tf.cast(tf.strings.length(image_bytes), tf.float32)

    keras.utils.set_random_seed(2)
    config = PreprocessConfig(32, 1, True)
    model = build_model("compact", config, seed=2, augment=False)
    data = slice_png(4, 50, 60)
    outputs = make_explain_fn(model, config, gate_score=byte_count)(tf.constant(data))
    assert set(outputs) == {"tumor_probability", "heatmap", "brain_mri_score"}
    assert float(outputs["brain_mri_score"]) == len(data)
    plain = make_explain_fn(model, config)(tf.constant(data))
    assert "brain_mri_score" not in plain


@pytest.mark.parametrize("augment", [False, True])
def test_stages_and_the_default_layer(augment: bool) -> None:
    """One layer per grid size, the last of each, from the first convolution on (not the input
    nor the augmentation a trained model carries); the default is the first."""
    import keras

    from training.architectures import build_model
    from training.gradcam import default_layers, explain_spec, stage_layers
    from training.preprocessing import PreprocessConfig

    model = build_model("compact", PreprocessConfig(64, 1, True), seed=0, augment=augment)
    stages = stage_layers(model)
    assert [layer.output.shape[1] for layer in stages] == [32, 16, 8, 4]
    assert all(isinstance(layer, keras.layers.ReLU) for layer in stages)
    assert default_layers(model) == [stages[0].name]
    assert explain_spec(model).layer == stages[0].name


def test_several_layers_average_their_scaled_maps(slice_png: SlicePng) -> None:
    import keras
    import tensorflow as tf

    from training.architectures import build_model
    from training.gradcam import make_explain_fn, stage_layers
    from training.preprocessing import PreprocessConfig

    keras.utils.set_random_seed(3)
    config = PreprocessConfig(32, 1, False)
    model = build_model("compact", config, seed=3, augment=False)
    first, last = (stage_layers(model)[i].name for i in (0, -1))
    data = tf.constant(slice_png(6, 40, 40))
    maps = [make_explain_fn(model, config, names)(data)["heatmap"].numpy()
            for names in ([first], [last], [first, last])]
    expected = (maps[0] + maps[1]) / 2
    np.testing.assert_allclose(maps[2], expected / expected.max(), atol=1e-5)


def test_an_ensembles_heatmap_averages_every_member_and_view(slice_png: SlicePng) -> None:
    """An ensemble with flip TTA: the map is the mean of each member's map on the slice and
    (mirrored back) on its mirror image, each scaled to 1; P(tumor) is the ensemble's own."""
    import keras
    import tensorflow as tf

    from training.architectures import build_model
    from training.ensemble import build_ensemble
    from training.gradcam import make_explain_fn
    from training.preprocessing import PreprocessConfig, decode, input_box, to_pixels

    keras.utils.set_random_seed(4)
    config = PreprocessConfig(32, 1, False)
    members = [build_model("compact", config, seed=s, augment=False) for s in (4, 5)]
    ensemble = build_ensemble(members, temperature=1.3, flip_tta=True, intercept=-0.2)
    data = tf.constant(slice_png(7, 40, 40))
    outputs = make_explain_fn(ensemble, config)(data)

    image = decode(data, config)
    pixels = to_pixels(image, input_box(image, config), config)[None]
    assert float(outputs["tumor_probability"]) == pytest.approx(
        float(ensemble(pixels, training=False)[0, 0]), abs=1e-6)
    maps = []
    for member in members:
        for mirrored in (False, True):
            seen = tf.constant(data) if not mirrored else tf.constant(
                _png(np.asarray(Image.open(io.BytesIO(data.numpy())))[:, ::-1].copy()))
            heat = make_explain_fn(member, config)(seen)["heatmap"].numpy()
            maps.append(heat[:, ::-1] if mirrored else heat)
    expected = np.mean(maps, axis=0)
    np.testing.assert_allclose(outputs["heatmap"].numpy(), expected / expected.max(), atol=1e-4)

"""Fixtures shared by the training and service tests: a tiny real SavedModel, exported through
the training package's export (the real seam), and sample images in many formats and modes."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from synthetic_slices import synthetic_slice

TEST_MODEL_NAME = "test-model"
TEST_THRESHOLD = 0.5
TEST_GATE_MARGIN = 5.0
TestModel = tuple[Any, Any, Any, list[bytes]]  # (Keras model, preprocessing, card, slices)


@pytest.fixture(scope="session")
def test_model() -> TestModel:
    """(Keras model, preprocessing, card, calibration slices): the compact CNN at 32x32
    greyscale, untrained but made image-dependent. Fresh batch-norm statistics shrink its
    features to ~1e-7, so each batch-norm layer is calibrated on synthetic slices and the last
    layer is seeded and centred: P(tumor) then spreads over (0, 1) and differs from slice to
    slice."""
    import keras
    import tensorflow as tf

    from training.architectures import build_model
    from training.preprocessing import PreprocessConfig, make_preprocess_fn

    keras.utils.set_random_seed(0)
    config = PreprocessConfig(32, 1, True)
    model = build_model("compact", config, seed=0, augment=False)
    slices = [encode(Image.fromarray(synthetic_slice(seed), "L"), "PNG") for seed in range(64)]
    pixels = make_preprocess_fn(config)(tf.constant(slices))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            inputs = keras.Model(model.inputs, layer.input)(pixels, training=False).numpy()
            gamma, beta, _, _ = layer.get_weights()
            axes = tuple(range(inputs.ndim - 1))
            layer.set_weights([gamma, beta, inputs.mean(axes), inputs.var(axes) + 1e-3])
    features = keras.Model(model.inputs, model.get_layer(index=-3).output)(pixels).numpy()
    rng = np.random.default_rng(0)
    kernel = rng.normal(0.0, 1.0, (features.shape[1], 1))
    logits = (features - features.mean(0)) @ kernel
    kernel *= 2.0 / float(logits.std())  # logits ~ N(0, 2) over the slices
    bias = -(features.mean(0) @ kernel)
    model.get_layer("tumor_probability").set_weights(
        [kernel.astype(np.float32), bias.astype(np.float32)]
    )
    return model, config, _test_card(model), slices


def _test_card(model: Any) -> Any:
    from model_contract import ModelCard

    return ModelCard(
        name=TEST_MODEL_NAME,
        version=0,  # publishing sets the next version
        classes=("healthy", "tumor"),
        positive_class="tumor",
        threshold=TEST_THRESHOLD,
        architecture={"name": "compact", "parameters": int(model.count_params())},
        metrics={"split": "none", "n": 0},
        intended_use="Tests only.",
    )


def gate_check_images() -> list[bytes]:
    """Synthetic slices (seeds the gate was not fitted on) in every sample format: the test
    gate's threshold lets all of them pass, so every test upload of a slice is answered."""
    from dicom_files import DICOM_MAKERS

    from model_contract import canonical_bytes, dicom

    images = [canonical_bytes(make(synthetic_slice(seed)))
              for seed in range(100, 108) for make in SAMPLE_MAKERS.values()]
    # The windowed MR DICOM slice the upload-page test sends, converted by the contract's
    # pixel rule: windowing changes its contrast, and it must be answered too.
    scan = DICOM_MAKERS["mr_12bit_signed_rescale_window"](synthetic_slice(5))
    images.extend(dicom.frame_png(frame) for frame in dicom.read_dicom(scan, None).frames)
    return images


@pytest.fixture(scope="session")
def exported_model_dir(tmp_path_factory: pytest.TempPathFactory, test_model: TestModel) -> Path:
    """A models folder holding `test-model/1/`: the tiny model with a brain-MRI input gate and
    the `explain` signature, exported through the training package's export (the real seam).
    The gate is fitted on the synthetic slices; its threshold sits TEST_GATE_MARGIN below the
    lowest score of `gate_check_images`, so slices pass and strongly coloured images (colour
    term ~60) fail."""
    import dataclasses

    from model_contract import GATE_OUTPUT_KEY, Acceptance
    from training.export import load_outputs, publish, stage_export
    from training.input_gate import fit_input_gate, gate_section

    model, config, card, slices = test_model
    gate = fit_input_gate(model, config, slices, np.arange(len(slices)) % 2)
    models_dir = tmp_path_factory.mktemp("models")
    staged = stage_export(model, config, models_dir, TEST_MODEL_NAME, gate)
    scores = load_outputs(staged.folder)(gate_check_images())[GATE_OUTPUT_KEY]
    threshold = float(scores.min()) - TEST_GATE_MARGIN
    gated = dataclasses.replace(
        card, input_gate=gate_section(gate, threshold, 1.0, Acceptance(1.0, None), None),
    )
    publish(staged, gated)
    return models_dir


def _export(test_model: TestModel, models_dir: Path, explain: bool) -> Path:
    """The tiny model exported without a gate, as every version before the gate was."""
    from training.export import export_model

    model, config, card, slices = test_model
    export_model(model, config, card, models_dir, TEST_MODEL_NAME, verify_with=slices,
                 explain=explain)
    return models_dir


@pytest.fixture(scope="session")
def gateless_model_dir(tmp_path_factory: pytest.TempPathFactory, test_model: TestModel) -> Path:
    """The same tiny model exported without a gate (with the `explain` signature)."""
    return _export(test_model, tmp_path_factory.mktemp("gateless-models"), explain=True)


@pytest.fixture(scope="session")
def unexplained_model_dir(
    tmp_path_factory: pytest.TempPathFactory, test_model: TestModel
) -> Path:
    """The same model exported as older versions were: `serving_default` only, no gate, no
    explain."""
    return _export(test_model, tmp_path_factory.mktemp("models-without-explain"), explain=False)


@pytest.fixture(scope="session")
def exported_version_dir(exported_model_dir: Path) -> Path:
    return exported_model_dir / TEST_MODEL_NAME / "1"


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _sixteen_bit(grey: np.ndarray) -> Image.Image:
    # Spread the values over 16 bits, with low bits set, so the 1/257 scaling is exercised.
    return Image.fromarray(grey.astype(np.uint16) * 257 + (grey.astype(np.uint16) % 97))


def _exif_rotated_jpeg(grey: np.ndarray) -> bytes:
    image = Image.fromarray(grey, "L").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    return encode(image, "JPEG", quality=92, exif=exif.tobytes())


SAMPLE_MAKERS: dict[str, Callable[[np.ndarray], bytes]] = {
    "png_L": lambda g: encode(Image.fromarray(g, "L"), "PNG"),
    "png_RGB": lambda g: encode(Image.fromarray(g, "L").convert("RGB"), "PNG"),
    "png_RGBA": lambda g: encode(Image.fromarray(g, "L").convert("RGBA"), "PNG"),
    "png_P": lambda g: encode(Image.fromarray(g, "L").convert("P"), "PNG"),
    "png_1": lambda g: encode(Image.fromarray(g, "L").convert("1"), "PNG"),
    "png_I16": lambda g: encode(_sixteen_bit(g), "PNG"),
    "jpeg_L": lambda g: encode(Image.fromarray(g, "L"), "JPEG", quality=92),
    "jpeg_RGB": lambda g: encode(Image.fromarray(g, "L").convert("RGB"), "JPEG", quality=92),
    "jpeg_CMYK": lambda g: encode(Image.fromarray(g, "L").convert("CMYK"), "JPEG", quality=92),
    "jpeg_exif_rotated": _exif_rotated_jpeg,
    "bmp_RGB": lambda g: encode(Image.fromarray(g, "L").convert("RGB"), "BMP"),
    "bmp_L": lambda g: encode(Image.fromarray(g, "L"), "BMP"),
    "tiff_L": lambda g: encode(Image.fromarray(g, "L"), "TIFF"),
    "tiff_I16": lambda g: encode(_sixteen_bit(g), "TIFF"),
    "tiff_CMYK": lambda g: encode(Image.fromarray(g, "L").convert("CMYK"), "TIFF"),
    "gif_P": lambda g: encode(Image.fromarray(g, "L").convert("P"), "GIF"),
    "webp_RGB": lambda g: encode(Image.fromarray(g, "L").convert("RGB"), "WEBP", lossless=True),
}


@pytest.fixture(scope="session")
def sample_images() -> dict[str, bytes]:
    """One file per format/mode combination the service must accept, each a different slice."""
    return {name: make(synthetic_slice(seed)) for seed, (name, make) in enumerate(
        SAMPLE_MAKERS.items()
    )}


@pytest.fixture(scope="session")
def colour_noise() -> bytes:
    """Saturated colour noise: its colour term alone (~60 training spreads) fails the test
    model's input gate."""
    rng = np.random.default_rng(7)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (80, 96, 3), np.uint8), "RGB").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def slice_png() -> Callable[[int, int, int], bytes]:
    """`slice_png(seed, width, height)`: a synthetic slice of that size as greyscale PNG bytes."""

    def make(seed: int, width: int, height: int) -> bytes:
        return encode(Image.fromarray(synthetic_slice(seed, (width, height)), "L"), "PNG")

    return make

"""The frozen signature (service/graph_freezing.py): it answers what the exported signature
answers, reads no variables, and any failure to freeze (or a frozen answer that differs) leaves
the signature as exported in service."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.graph_freezing import (
    FrozenSignature,
    disagreement,
    frozen_or_as_is,
    graph_op_types,
)
from service.model import ModelRunner


@pytest.fixture(scope="module")
def runners(exported_version_dir: Path) -> tuple[ModelRunner, ModelRunner]:
    return (ModelRunner.load(exported_version_dir, freeze_graph=True),
            ModelRunner.load(exported_version_dir, freeze_graph=False))


def test_frozen_predictions_equal_the_exported_signatures(
    runners: tuple[ModelRunner, ModelRunner], sample_images: dict[str, bytes]
) -> None:
    frozen, exported = runners
    assert frozen.frozen and not exported.frozen
    images = [sample_images[name] for name in ("png_L", "jpeg_L", "png_RGB", "jpeg_RGB")]
    got, want = frozen.predict(images), exported.predict(images)
    for a, b in zip(got, want, strict=True):
        assert a.tumor_probability == pytest.approx(b.tumor_probability, abs=1e-5)
        assert a.brain_mri_score is not None and b.brain_mri_score is not None
        assert a.brain_mri_score == pytest.approx(b.brain_mri_score, abs=1e-4)
    assert len({round(a.tumor_probability, 5) for a in got}) > 1  # not a constant answer


def test_frozen_explanations_equal_the_exported_signatures(
    runners: tuple[ModelRunner, ModelRunner], sample_images: dict[str, bytes]
) -> None:
    frozen, exported = runners
    got, want = frozen.explain(sample_images["png_L"]), exported.explain(sample_images["png_L"])
    assert got.probability == pytest.approx(want.probability, abs=1e-5)
    assert got.heatmap.shape == want.heatmap.shape
    assert np.abs(got.heatmap - want.heatmap).max() < 1e-3
    assert got.heatmap.max() > 0.5  # a real heatmap, not zeros on both sides


def test_the_frozen_graph_reads_no_variable(exported_version_dir: Path) -> None:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(exported_version_dir))
    signature = loaded.signatures["serving_default"]
    assert "ReadVariableOp" in graph_op_types(signature.graph)
    frozen_ops = FrozenSignature(signature).op_types()
    assert not frozen_ops & {"ReadVariableOp", "VarHandleOp", "ResourceGather"}
    assert frozen_ops & {"Conv2D", "DepthwiseConv2dNative"}  # the network is still there


class Unfreezable:
    """Called like a signature, but not a TensorFlow function: freezing it raises."""

    structured_outputs: dict[str, Any] = {"p": None}

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        return {"p": np.array([0.5])}


def test_a_signature_that_cannot_be_frozen_is_served_as_exported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signature = Unfreezable()
    with caplog.at_level(logging.WARNING, logger="service"):
        assert frozen_or_as_is(signature, {"x": 1}, "serving_default") is signature
    assert "serving the serving_default signature unfrozen: freezing it failed" in caplog.text


def test_a_frozen_signature_that_answers_differently_is_not_served(
    exported_version_dir: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, sample_images: dict[str, bytes],
) -> None:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(exported_version_dir))
    signature = loaded.signatures["serving_default"]
    sample = {"image_bytes": tf.constant([sample_images["png_L"]])}
    assert isinstance(frozen_or_as_is(signature, sample, "serving_default"), FrozenSignature)

    answer = FrozenSignature.__call__

    def off_by_a_little(self: FrozenSignature, **inputs: Any) -> dict[str, Any]:
        outputs = answer(self, **inputs)
        return {**outputs, "tumor_probability": outputs["tumor_probability"] + 0.01}

    monkeypatch.setattr(FrozenSignature, "__call__", off_by_a_little)
    with caplog.at_level(logging.WARNING, logger="service"):
        assert frozen_or_as_is(signature, sample, "serving_default") is signature
    assert "its 'tumor_probability' output differed" in caplog.text


def test_disagreement_names_the_first_output_that_differs() -> None:
    want = {"a": np.array([0.25, 0.5]), "b": np.zeros((2, 2))}
    assert disagreement(want, {"a": np.array([0.25, 0.5 + 1e-6]), "b": np.zeros((2, 2))}) is None
    assert disagreement(want, {"a": np.array([0.25, 0.6]), "b": np.zeros((2, 2))}) == "a"
    assert disagreement(want, {"a": want["a"], "b": np.zeros((2, 3))}) == "b"

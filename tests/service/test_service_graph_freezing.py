"""The frozen signature (service/graph_freezing.py): it answers what the exported signature
answers, reads no variables, and any failure to freeze (or a frozen answer that differs) leaves
the signature as exported in service."""

from __future__ import annotations

import logging
import threading
import time
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
    frozen = ModelRunner.load(exported_version_dir)
    assert not frozen.frozen  # loads as exported
    assert frozen.freeze([1, 2, 3]) is True
    return frozen, ModelRunner.load(exported_version_dir)


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
    frozen_ops = graph_op_types(FrozenSignature(signature).function.graph)
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


def test_the_savedmodel_is_let_go_only_once_calls_on_it_have_ended(
    exported_version_dir: Path, monkeypatch: pytest.MonkeyPatch, sample_images: dict[str, bytes],
) -> None:
    import service.model

    runner = ModelRunner.load(exported_version_dir)
    exported = runner._signature
    entered, release = threading.Event(), threading.Event()

    class Slow:
        """The exported signature, held up inside a call until `release`."""

        structured_outputs = exported.structured_outputs

        def __call__(self, **inputs: Any) -> Any:
            entered.set()
            assert release.wait(30)
            return exported(**inputs)

    slow = Slow()
    runner._signature = slow
    real = service.model.frozen_or_as_is
    monkeypatch.setattr(service.model, "frozen_or_as_is",
                        lambda f, sample, name: real(exported if f is slow else f, sample, name))
    answers: list[Any] = []
    caller = threading.Thread(target=lambda: answers.append(
        runner.predict([sample_images["png_L"]])))
    caller.start()
    assert entered.wait(30)
    freezer = threading.Thread(target=runner.freeze, args=([1],))
    freezer.start()
    deadline = time.monotonic() + 60
    while not runner.frozen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.frozen  # new calls already run frozen...
    time.sleep(0.2)
    assert freezer.is_alive() and runner._loaded is not None  # ...but the old call holds it
    release.set()
    caller.join(30)
    freezer.join(30)
    assert not freezer.is_alive() and runner._loaded is None
    assert len(answers) == 1 and 0.0 <= answers[0][0].tumor_probability <= 1.0


def test_the_service_is_ready_before_freezing_and_answers_through_the_swap(
    make_client: Any, sample_images: dict[str, bytes], caplog: pytest.LogCaptureFixture,
) -> None:
    files = {"file": ("scan.png", sample_images["png_L"])}
    with caplog.at_level(logging.INFO, logger="service"), make_client(freeze_graph=True) as client:
        runtime = client.app.state.runtime
        first = client.post("/predict", files=files)  # ready: it answers at once
        during = [client.post("/predict", files=files) for _ in range(20)]
        assert runtime.wait_for_freezing(60)
        assert runtime.runner.frozen
        assert "mri_model_graph_frozen 1.0" in client.get("/metrics").text
        after = client.post("/predict", files=files)
    answers = [r.json()["tumor_probability"] for r in (first, *during, after)]
    assert all(r.status_code == 200 for r in (first, *during, after))
    assert max(answers) - min(answers) < 1e-5
    assert "graph frozen in" in caplog.text


def test_without_freeze_graph_the_service_serves_the_signatures_as_exported(
    make_client: Any, sample_images: dict[str, bytes],
) -> None:
    with make_client(freeze_graph=False) as client:
        runtime = client.app.state.runtime
        assert runtime.wait_for_freezing(5)
        response = client.post("/predict", files={"file": ("s.png", sample_images["png_L"])})
        assert response.status_code == 200 and not runtime.runner.frozen
        assert "mri_model_graph_frozen 0.0" in client.get("/metrics").text

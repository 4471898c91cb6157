"""End to end: tritonclient's HTTP client, unchanged, against a real `python -m service` process
on 127.0.0.1, speaking the Open Inference Protocol v2 (health, metadata, inference in JSON and
with the binary tensor data extension); its answers equal /predict's."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from benchmarks.servers import ServerProcess, spawn_server, wait_until_ready

pytestmark = pytest.mark.e2e

MODEL = "test-model"
IMAGES = ["png_L", "png_RGB", "jpeg_L", "tiff_I16", "gif_P", "webp_RGB"]


@pytest.fixture(scope="module")
def server(exported_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ServerProcess]:
    process = spawn_server("oip", "service", ["service", "--model-dir", str(exported_model_dir)],
                           {"MRI_MAX_WAIT_MS": "5"}, tmp_path_factory.mktemp("oip"))
    try:
        wait_until_ready(process, 120)
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[triton.InferenceServerClient]:
    oip = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    yield oip
    oip.close()


def image_input(images: list[bytes], binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("image", [len(images)], "BYTES")
    data = images if binary else [base64.b64encode(image) for image in images]
    return tensor.set_data_from_numpy(np.array(data, dtype=np.object_), binary_data=binary)


def test_health_and_metadata(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL) and client.is_model_ready(MODEL, model_version="1")
    assert not client.is_model_ready("another-model")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata(MODEL, model_version="1")
    assert metadata["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
    assert {output["name"] for output in metadata["outputs"]} >= {"tumor_probability", "label"}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_inference_equals_predict(
    server: ServerProcess, client: triton.InferenceServerClient,
    sample_images: dict[str, bytes], binary: bool,
) -> None:
    images = [sample_images[name] for name in IMAGES]
    predicted = [
        httpx.post(f"{server.url}/predict", files={"file": (name, sample_images[name])},
                   timeout=30).json()
        for name in IMAGES
    ]
    outputs = [triton.InferRequestedOutput(name, binary_data=binary)
               for name in ("tumor_probability", "label")]
    result = client.infer(MODEL, [image_input(images, binary)], outputs=outputs)
    assert result.get_response()["model_version"] == "1"
    probabilities = result.as_numpy("tumor_probability")
    labels = [label.decode() if isinstance(label, bytes) else str(label)
              for label in result.as_numpy("label")]
    for name, answer, probability, label in zip(IMAGES, predicted, probabilities, labels,
                                                strict=True):
        # Batch of N against batch of 1: oneDNN picks its kernels by batch size and CPU
        # (AVX-512 machines differ by about 1e-6), so equal means within 1e-5.
        assert abs(float(probability) - answer["tumor_probability"]) <= 1e-5, name
        assert label == answer["label"], name


def test_a_refused_image_is_a_protocol_error(
    client: triton.InferenceServerClient, sample_images: dict[str, bytes]
) -> None:
    images = [sample_images["png_L"], b"GIF89a but not really"]
    with pytest.raises(InferenceServerException) as refused:
        client.infer(MODEL, [image_input(images, binary=True)])
    assert refused.value.status() in ("415", "422")
    assert "Element 1 of input 'image'" in str(refused.value.message())

"""The bad-input corpus: every kind of bad request the service knows, each answered with its
status and problem type (never a 500), and a real prediction answered correctly right after,
on one running app with an API key. (Header floods, slow clients and connection limits need a
real socket: tests/e2e/test_e2e_edge.py.)"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.config import Settings

KEY = {"X-API-Key": "corpus-key"}
MAX_UPLOAD = 300_000


def png_chunk(kind: bytes, body: bytes, crc: int | None = None) -> bytes:
    checksum = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", checksum)


def png_header_only(width: int, height: int) -> bytes:
    """A well-formed PNG header claiming this size, followed by a few bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + png_chunk(b"IEND", b""))


def with_broken_crc(png: bytes) -> bytes:
    """A real PNG whose IHDR checksum is wrong (the pixels are intact)."""
    return png[:29] + bytes([png[29] ^ 0xFF]) + png[30:]


Send = Callable[[TestClient, dict[str, bytes]], Any]


def predict(data: bytes, headers: dict[str, str] = KEY) -> Send:
    return lambda client, _: client.post(
        "/predict", files={"file": ("scan.png", data)}, headers=headers
    )


def sample(name: str, change: Callable[[bytes], bytes] = lambda b: b) -> Send:
    return lambda client, images: client.post(
        "/predict", files={"file": ("scan", change(images[name]))}, headers=KEY
    )


CORPUS: dict[str, tuple[Send, int, str]] = {
    "empty file": (predict(b""), 422, "empty_file"),
    "text, not an image": (predict(b"patient notes"), 415, "unsupported_format"),
    "PDF": (predict(b"%PDF-1.4\n" + b"0" * 100), 415, "unsupported_format"),
    "truncated PNG": (sample("png_L", lambda b: b[: len(b) // 2]), 422, "undecodable"),
    "PNG with a broken chunk CRC": (sample("png_L", with_broken_crc), 422, "undecodable"),
    "truncated JPEG": (sample("jpeg_L", lambda b: b[: len(b) // 3]), 422, "undecodable"),
    "PNG with too little pixel data": (predict(png_header_only(64, 64)), 422, "undecodable"),
    "pixel bomb header": (predict(png_header_only(100_000, 100_000)), 413, "too_many_pixels"),
    "file over the byte limit": (predict(b"\x89PNG" + b"\0" * MAX_UPLOAD), 413,
                                 "file_too_large"),
    "body over the byte limit": (predict(b"\x89PNG" + b"\0" * (MAX_UPLOAD + 100_000)), 413,
                                 "body_too_large"),
    "no API key": (predict(b"x", headers={}), 401, "unauthorized"),
    "wrong API key": (predict(b"x", headers={"X-API-Key": "guess"}), 401, "unauthorized"),
    "two file parts": (
        lambda client, images: client.post(
            "/predict", headers=KEY,
            files=[("file", ("a", images["png_L"])), ("file", ("b", images["png_RGB"]))],
        ), 422, "several_files"),
    "no file part": (
        lambda client, _: client.post("/predict", headers=KEY, data={"other": "x"}),
        422, "invalid_request"),
    "JSON instead of multipart": (
        lambda client, _: client.post("/predict", headers=KEY, json={"file": "x"}),
        422, "invalid_request"),
    "multipart without a boundary": (
        lambda client, _: client.post(
            "/predict", content=b"--x\r\n", headers={**KEY, "Content-Type": "multipart/form-data"}
        ), 400, "about:blank"),
    "too many batch files": (
        lambda client, images: client.post(
            "/predict/batch", headers=KEY,
            files=[("files", (f"f{i}", images["png_L"])) for i in range(5)],
        ), 422, "too_many_files"),
    "unknown route": (lambda client, _: client.get("/predictions"), 404, "about:blank"),
    "wrong method": (lambda client, _: client.get("/predict", headers=KEY), 405, "about:blank"),
}


@pytest.fixture(scope="module")
def corpus_client(exported_model_dir: Path) -> Iterator[TestClient]:
    settings = Settings(
        model_dir=exported_model_dir, api_key="corpus-key", max_upload_bytes=MAX_UPLOAD,
        max_batch_files=4, max_pixels=30_000_000,
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert app.state.runtime.wait_until_loaded(120)
        yield client


@pytest.fixture(scope="module")
def reference(corpus_client: TestClient, sample_images: dict[str, bytes]) -> dict[str, Any]:
    answer = corpus_client.post("/predict", files={"file": ("r", sample_images["png_RGB"])},
                                headers=KEY)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize("kind", list(CORPUS))
def test_each_bad_input_gets_its_status_and_type_then_a_real_answer(
    kind: str, corpus_client: TestClient, sample_images: dict[str, bytes],
    reference: dict[str, Any],
) -> None:
    send, status, problem_type = CORPUS[kind]
    response = send(corpus_client, sample_images)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["request_id"] == response.headers["x-request-id"]
    assert body["type"] == problem_type or body["type"].endswith(":" + problem_type)
    assert "PIL" not in body["detail"] and "/tmp" not in body["detail"]  # no internals
    after = corpus_client.post(
        "/predict", files={"file": ("r", sample_images["png_RGB"])}, headers=KEY
    )
    assert after.status_code == 200 and after.json() == reference


def slice_variants(seed: int) -> tuple[bytes, bytes, bytes]:
    """One slice as an 8-bit PNG, a 0..1 float32 TIFF and a 0..4095 32-bit integer TIFF."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:80, 0:96]
    head = ((yy - 40) / 34) ** 2 + ((xx - 48) / 38) ** 2 <= 1
    grey = (head * rng.integers(60, 200, (80, 96))).astype(np.uint8)
    grey[0, 0], grey[40, 48] = 0, 255  # the full 0..255 range, so range scaling is exact
    floats = Image.fromarray(grey.astype(np.float32) / 255.0, "F")
    ints = Image.fromarray(grey.astype(np.int32) * 4095 // 255, "I")
    files = []
    for image, fmt in ((Image.fromarray(grey, "L"), "PNG"), (floats, "TIFF"), (ints, "TIFF")):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        files.append(buffer.getvalue())
    return files[0], files[1], files[2]


def test_float_and_32_bit_slices_are_answered_like_their_8_bit_original(
    corpus_client: TestClient,
) -> None:
    eight_bit, float_tiff, int_tiff = slice_variants(3)

    def probability(data: bytes) -> float:
        answer = corpus_client.post("/predict", files={"file": ("s", data)}, headers=KEY)
        assert answer.status_code == 200, answer.text
        value: float = answer.json()["tumor_probability"]
        return value

    expected = probability(eight_bit)
    assert probability(float_tiff) == pytest.approx(expected, abs=1e-6)
    assert probability(int_tiff) == pytest.approx(expected, abs=0.02)  # 4095 levels -> 255


def test_a_decoded_size_bomb_is_answered(corpus_client: TestClient) -> None:
    # 100 KB that decode to 5000 x 5000 RGBA (100 MB): reduced before the model, answered.
    buffer = io.BytesIO()
    Image.new("RGBA", (5000, 5000)).save(buffer, format="PNG", optimize=True)
    answer = corpus_client.post("/predict", files={"file": ("b", buffer.getvalue())},
                                headers=KEY)
    # It reaches the model: answered, or refused by the input gate (a blank image is no MRI).
    if answer.status_code == 422:
        assert answer.json()["type"].endswith(":not_brain_mri"), answer.text
    else:
        assert answer.status_code == 200 and answer.json()["label"] in {"healthy", "tumor"}

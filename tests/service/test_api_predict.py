"""POST /predict: every answer and every error a client can cause."""

from __future__ import annotations

import io
import threading
import time
import zlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from service_helpers import assert_problem

from service.images import ADVERTISED_FORMATS

WORKING_SAMPLES = [
    "png_L", "png_RGB", "png_RGBA", "png_P", "png_1", "png_I16", "jpeg_L", "jpeg_RGB",
    "jpeg_CMYK", "jpeg_exif_rotated", "tiff_L", "tiff_I16", "tiff_CMYK", "gif_P", "webp_RGB",
    "bmp_L", "bmp_RGB",
]


def predict(client: TestClient, data: bytes, name: str = "scan.png", **kwargs: Any) -> Any:
    return client.post("/predict", files={"file": (name, data)}, **kwargs)


@pytest.mark.parametrize("sample", WORKING_SAMPLES)
def test_every_accepted_format_and_mode_is_answered(
    client: TestClient, sample_images: dict[str, bytes], sample: str
) -> None:
    response = predict(client, sample_images[sample])
    assert response.status_code == 200, response.text
    body = response.json()
    assert 0.0 <= body["tumor_probability"] <= 1.0
    assert body["threshold"] == 0.5
    expected = "tumor" if body["tumor_probability"] >= body["threshold"] else "healthy"
    assert body["label"] == expected
    assert body["model"] == {"name": "test-model", "version": 1}


def test_probability_depends_on_the_image(
    client: TestClient, sample_images: dict[str, bytes]
) -> None:
    answers = {
        predict(client, sample_images[name]).json()["tumor_probability"]
        for name in ("png_L", "png_RGB", "jpeg_RGB", "webp_RGB")
    }
    assert len(answers) == 4
    labels = {
        predict(client, sample_images[name]).json()["label"] for name in WORKING_SAMPLES
    }
    assert labels == {"tumor", "healthy"}


def test_same_image_same_answer_in_any_container(client: TestClient) -> None:
    """Lossless re-encodings of one slice (PNG, TIFF, 16-bit) get the same probability."""
    image = Image.new("L", (64, 64), 0)
    image.paste(200, (10, 12, 50, 56))
    answers = []
    for fmt, converted in (("PNG", image), ("TIFF", image), ("WEBP", image.convert("RGB"))):
        buffer = io.BytesIO()
        converted.save(buffer, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        answers.append(predict(client, buffer.getvalue()).json()["tumor_probability"])
    assert answers[0] == pytest.approx(answers[1], abs=1e-6)
    assert answers[0] == pytest.approx(answers[2], abs=1e-6)


def test_format_is_sniffed_from_bytes_not_the_name(client: TestClient, png: bytes) -> None:
    assert predict(client, png, "notes.txt").status_code == 200
    assert predict(client, png, "scan.jpg").status_code == 200
    body = assert_problem(predict(client, b"%PDF-1.4 not an image", "scan.png"), 415)
    assert body["accepted_formats"] == list(ADVERTISED_FORMATS)
    for name in ADVERTISED_FORMATS:
        assert name in body["detail"]


@pytest.mark.parametrize(
    "data",
    [
        b"plain text, not an image",
        b"%!PS-Adobe-3.0 EPSF-3.0\n",  # EPS: Pillow could open it, but it is not accepted
        b"\x00\x00\x01\x00\x01\x00\x10\x10",  # ICO header
    ],
    ids=["text", "eps", "ico"],
)
def test_unaccepted_bytes_are_415(client: TestClient, data: bytes) -> None:
    body = assert_problem(predict(client, data), 415, "Accepted formats: PNG, JPEG, BMP")
    assert body["type"].endswith("unsupported_format")


def test_missing_file_field_is_422(client: TestClient, png: bytes) -> None:
    body = assert_problem(client.post("/predict", files={"image": ("a.png", png)}), 422)
    assert body["errors"][0]["loc"] == ["body", "file"]
    assert_problem(client.post("/predict"), 422, "file")
    assert_problem(client.post("/predict", json={"file": "x"}), 422, "file")


def test_empty_file_is_422(client: TestClient) -> None:
    assert_problem(predict(client, b""), 422, "empty")


def test_truncated_png_is_422(client: TestClient, png: bytes) -> None:
    body = assert_problem(predict(client, png[: len(png) // 2]), 422, "cannot be decoded")
    assert body["type"].endswith("undecodable")


def test_corrupt_jpeg_is_422(client: TestClient, sample_images: dict[str, bytes]) -> None:
    jpeg = sample_images["jpeg_L"]
    assert_problem(predict(client, jpeg[:400]), 422, "JPEG")


def png_claiming(width: int, height: int) -> bytes:
    """An 8x8 PNG whose header claims width x height: decoding it would fail (422), so a 413
    shows the limit was applied to the header, before decoding."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")  # IHDR width, height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # IHDR checksum
    return bytes(data)


def test_image_over_the_pixel_limit_is_413_before_decoding(
    make_client: Any, png: bytes
) -> None:
    with make_client(max_pixels=5000) as client:
        body = assert_problem(predict(client, png), 413, "96x80 = 7680 pixels")
        assert body["type"].endswith("too_many_pixels")
        assert_problem(predict(client, png_claiming(3000, 3000)), 413, "3000x3000")
        # Past Pillow's own decompression-bomb limit it refuses to open: still 413.
        assert_problem(predict(client, png_claiming(100_000, 100_000)), 413, "pixels")
        assert predict(client, Image_png(60, 60)).status_code == 200
    with make_client() as client:  # within the default limit the same header is undecodable
        assert_problem(predict(client, png_claiming(3000, 3000)), 422)


def Image_png(width: int, height: int) -> bytes:  # noqa: N802 - reads as a constructor
    buffer = io.BytesIO()
    image = Image.new("L", (width, height), 0)
    image.paste(180, (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_body_over_the_byte_limit_is_413(make_client: Any) -> None:
    big = Image_png(400, 400) + b"\x00" * 80_000  # trailing bytes: still a PNG
    with make_client(max_upload_bytes=2_000) as client:
        # Declared Content-Length over the limit (2000 + 64 KiB multipart allowance).
        body = assert_problem(predict(client, big), 413, "limit of")
        assert body["type"].endswith("body_too_large")
        assert body["limit_bytes"] == 2_000 + 64 * 1024
        # No Content-Length (chunked): counted while it streams.
        parts = [b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n",
                 big, b"\r\n--b--\r\n"]
        response = client.post(
            "/predict", content=iter(parts),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert "content-length" not in response.request.headers
        assert_problem(response, 413, "limit of")
        # A file over max_upload_bytes but inside the body allowance: the per-file check.
        body = assert_problem(predict(client, Image_png(80, 80) + b"\x00" * 3_000), 413)
        assert body["type"].endswith("file_too_large")
        assert predict(client, Image_png(30, 30)).status_code == 200


def test_api_key_is_required_when_configured(make_client: Any, png: bytes) -> None:
    with make_client(api_key="s3cret-key") as client:
        body = assert_problem(predict(client, png), 401, "X-API-Key")
        assert body["type"].endswith("unauthorized")
        assert "ApiKey" in client.post("/predict", files={"file": ("a", png)}).headers[
            "www-authenticate"
        ]
        assert_problem(predict(client, png, headers={"X-API-Key": "wrong"}), 401)
        assert_problem(predict(client, png, headers={"X-API-Key": "s3cret-key "}), 401)
        assert predict(client, png, headers={"X-API-Key": "s3cret-key"}).status_code == 200
        # Health, model card and metrics stay open for probes and scrapers.
        assert client.get("/health/ready").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_no_api_key_configured_means_open(client: TestClient, png: bytes) -> None:
    assert predict(client, png, headers={"X-API-Key": "anything"}).status_code == 200


def test_not_ready_is_503_with_retry_after(make_client: Any, tmp_path: Any, png: bytes) -> None:
    with make_client(model_dir=tmp_path / "nothing-here", retry_after_seconds=7) as client:
        response = predict(client, png)
        body = assert_problem(response, 503, "not ready")
        assert response.headers["retry-after"] == "7"
        assert body["type"].endswith("not_ready")


def test_full_queue_is_503_with_retry_after_and_others_still_answered(
    make_client: Any, png: bytes, sample_images: dict[str, bytes]
) -> None:
    with make_client(queue_size=1, max_batch_files=1, max_batch_size=1, max_wait_ms=0) as client:
        batcher = client.app.state.runtime.batcher  # type: ignore[attr-defined]
        real_predict = batcher._predict
        entered, release = threading.Event(), threading.Event()

        def slow_predict(images: Any) -> Any:
            entered.set()
            assert release.wait(30)
            return real_predict(images)

        batcher._predict = slow_predict
        answers: dict[str, Any] = {}
        first = threading.Thread(target=lambda: answers.update(a=predict(client, png)))
        first.start()
        assert entered.wait(30)  # request a is inside the model
        second = threading.Thread(
            target=lambda: answers.update(b=predict(client, sample_images["png_RGB"]))
        )
        second.start()
        deadline = time.monotonic() + 30
        while batcher.depth < 1 and time.monotonic() < deadline:  # request b is queued
            time.sleep(0.01)
        assert batcher.depth == 1
        response = predict(client, sample_images["jpeg_L"])
        body = assert_problem(response, 503, "queue is full")
        assert response.headers["retry-after"] == "2"
        assert body["type"].endswith("queue_full")
        release.set()
        first.join(30)
        second.join(30)
        assert answers["a"].status_code == 200
        assert answers["b"].status_code == 200
        alone = predict(client, png).json()["tumor_probability"]
        assert answers["a"].json()["tumor_probability"] == pytest.approx(alone, abs=1e-6)

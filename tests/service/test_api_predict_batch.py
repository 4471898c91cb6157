"""POST /predict/batch: one entry per file in order; one bad file never fails the others."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_helpers import assert_problem


def batch(client: TestClient, files: list[tuple[str, bytes]], **kwargs: Any) -> Any:
    return client.post(
        "/predict/batch", files=[("files", (name, data)) for name, data in files], **kwargs
    )


def single(client: TestClient, data: bytes) -> float:
    response = client.post("/predict", files={"file": ("a", data)})
    assert response.status_code == 200
    probability: float = response.json()["tumor_probability"]
    return probability


def test_mixed_good_and_bad_files(client: TestClient, sample_images: dict[str, bytes]) -> None:
    files = [
        ("a.png", sample_images["png_L"]),
        ("notes.txt", b"not an image at all"),
        ("b.tif", sample_images["tiff_I16"]),
        ("empty.png", b""),
        ("cut.png", sample_images["png_RGB"][:300]),
        ("c.jpg", sample_images["jpeg_CMYK"]),
    ]
    response = batch(client, files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "test-model", "version": 1}
    results = body["results"]
    assert [r["filename"] for r in results] == [name for name, _ in files]

    for index in (0, 2, 5):
        result = results[index]
        assert "error" not in result
        assert result["tumor_probability"] == pytest.approx(single(client, files[index][1]),
                                                            abs=1e-5)
        expected = "tumor" if result["tumor_probability"] >= 0.5 else "healthy"
        assert result["label"] == expected
        assert result["threshold"] == 0.5
        assert result["model"] == {"name": "test-model", "version": 1}

    errors = {index: results[index]["error"] for index in (1, 3, 4)}
    assert errors[1]["status"] == 415 and "Accepted formats" in errors[1]["detail"]
    assert errors[3]["status"] == 422 and "empty" in errors[3]["detail"]
    assert errors[4]["status"] == 422 and errors[4]["type"].endswith("undecodable")
    for error in errors.values():
        assert set(error) >= {"type", "title", "status", "detail"}
        assert "label" not in results[1]


def test_answers_follow_request_order(client: TestClient, sample_images: dict[str, bytes]) -> None:
    names = ["png_L", "jpeg_RGB", "webp_RGB", "gif_P", "tiff_L", "png_RGBA"] * 3
    response = batch(client, [(name, sample_images[name]) for name in names])
    assert response.status_code == 200
    alone = {name: single(client, sample_images[name]) for name in set(names)}
    for name, result in zip(names, response.json()["results"], strict=True):
        assert result["filename"] == name
        assert result["tumor_probability"] == pytest.approx(alone[name], abs=1e-5)


def test_per_file_pixel_and_size_limits(make_client: Any, sample_images: dict[str, bytes]) -> None:
    with make_client(max_pixels=5000, max_upload_bytes=20_000) as client:
        small = sample_images["png_L"]  # 96x80: over 5000 pixels
        response = batch(client, [("big.png", small), ("huge.bin", b"\x89PNG" + b"0" * 30_000)])
        results = response.json()["results"]
        assert results[0]["error"]["status"] == 413
        assert "pixels" in results[0]["error"]["detail"]
        assert results[1]["error"]["status"] == 413
        assert results[1]["error"]["type"].endswith("file_too_large")


def test_too_many_files_is_422(make_client: Any, png: bytes) -> None:
    with make_client(max_batch_files=3) as client:
        body = assert_problem(batch(client, [("a", png)] * 4), 422, "at most 3")
        assert body["max_files"] == 3
        assert batch(client, [("a", png)] * 3).status_code == 200


def test_missing_files_field_is_422(client: TestClient, png: bytes) -> None:
    assert_problem(client.post("/predict/batch", files={"file": ("a", png)}), 422, "files")
    assert_problem(client.post("/predict/batch"), 422, "files")


def test_batch_body_limit_is_413(make_client: Any, png: bytes) -> None:
    with make_client(max_batch_upload_bytes=len(png) * 2) as client:
        assert_problem(batch(client, [("a", png)] * 3), 413, "limit of")


def test_batch_requires_the_api_key(make_client: Any, png: bytes) -> None:
    with make_client(api_key="k") as client:
        assert_problem(batch(client, [("a", png)]), 401)
        assert batch(client, [("a", png)], headers={"X-API-Key": "k"}).status_code == 200


def test_batch_not_ready_is_503(make_client: Any, png: bytes, tmp_path: Any) -> None:
    with make_client(model_dir=tmp_path) as client:
        response = batch(client, [("a", png)])
        assert_problem(response, 503)
        assert "retry-after" in response.headers


def test_batch_larger_than_the_queue_is_never_a_retryable_503(
    make_client: Any, png: bytes
) -> None:
    # MRI_QUEUE_SIZE >= MRI_MAX_BATCH_FILES is checked at start-up, so a batch that could never
    # be queued is refused by its size (422), not with a 503 the client would retry forever.
    with make_client(queue_size=2, max_batch_files=2) as client:
        response = batch(client, [("a", png)] * 3)
        assert_problem(response, 422)
        assert "retry-after" not in response.headers

"""The peer comparison's extra routes (issue 17, deliverable 5): the bodies it sends are what the
service reads (the OIP binary extension, DICOM), and its answer readers take the service's
answers. Nothing here times anything."""

from __future__ import annotations

import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image

from benchmarks.load import Body
from benchmarks.route_bodies import (
    OIP_HEADER_LENGTH,
    ROUTE_NAMES,
    dicom_bodies,
    explain_png_bodies,
    oip_answer,
    oip_bodies,
    png_answer,
    routes,
)
from benchmarks.workload import synthetic
from model_contract.dicom import read_dicom
from service.oip_wire import OutputTensor, encode_response, parse_request, read_images


def _png(grey: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(grey, "L").save(buffer, format="PNG")
    return buffer.getvalue()


def _file_part(body: Body) -> bytes:
    """The one file of a one-part multipart body."""
    boundary = body.content_type.split("boundary=")[1].encode()
    part = body.content.split(b"--" + boundary)[1]
    return part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")


def test_oip_bodies_are_read_by_the_service_as_the_same_images() -> None:
    images = synthetic(3, size=64).images
    bodies = oip_bodies(images)
    for index, (image, body) in enumerate(zip(images, bodies, strict=True)):
        headers = dict(body.headers)
        request, binary = parse_request(body.content, headers[OIP_HEADER_LENGTH])
        assert read_images(request, binary) == [image]
        assert body.image_indices == (index,)


def test_oip_answer_reads_the_probability_of_a_service_answer() -> None:
    body, _ = encode_response(
        {"model_name": "m", "model_version": "1"},
        [OutputTensor("label", "BYTES", ["tumor"]),
         OutputTensor("tumor_probability", "FP32", [0.75])],
        set(),
    )
    assert oip_answer(httpx.Response(200, content=body)) == [0.75]


def test_dicom_bodies_show_each_image_s_grey_levels() -> None:
    rng = np.random.default_rng(1)
    greys = [rng.integers(0, 256, (24, 32), dtype=np.uint8) for _ in range(2)]
    bodies = dicom_bodies([_png(grey) for grey in greys])
    for grey, body in zip(greys, bodies, strict=True):
        assert body.content_type.startswith("multipart/form-data")
        frames = read_dicom(_file_part(body)).frames
        assert len(frames) == 1
        np.testing.assert_array_equal(frames[0], grey)


def test_explain_png_bodies_ask_for_the_overlay_and_only_a_png_passes() -> None:
    body = explain_png_bodies(synthetic(1, size=32).images)[0]
    assert ("accept", "image/png") in body.headers
    assert png_answer(httpx.Response(200, content=_png(np.zeros((4, 4), np.uint8)))) == [None]
    with pytest.raises(ValueError, match="PNG"):
        png_answer(httpx.Response(200, content=json.dumps({"label": "tumor"}).encode()))


def test_explain_runs_at_its_own_concurrencies_and_the_others_as_predict() -> None:
    found = routes("brain-tumor-cnn", (1, 32))
    assert set(found) == set(ROUTE_NAMES) == {"explain", "explain-png", "dicom", "oip"}
    assert found["explain"].concurrencies == found["explain-png"].concurrencies == (1, 8)
    assert found["dicom"].concurrencies == found["oip"].concurrencies == (1, 32)
    assert found["oip"].path == "/v2/models/brain-tumor-cnn/infer"

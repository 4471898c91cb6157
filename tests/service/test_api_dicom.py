"""DICOM in, DICOM out: /predict, /predict/batch and /convert with pydicom-made files
(tests/dicom_files.py), every refusal's status and problem type, and the SR answer."""

from __future__ import annotations

import io
from typing import Any

import highdicom as hd
import numpy as np
import pytest
from dicom_files import (
    DICOM_MAKERS,
    mr_file,
    multiframe_file,
    rgb_file,
    scaled,
    sr_file,
    truncated,
    unsupported_syntax_file,
)
from fastapi.testclient import TestClient
from PIL import Image
from pydicom import dcmread
from pydicom.sr.codedict import codes
from service_helpers import assert_problem
from synthetic_slices import synthetic_slice

from model_contract.dicom import frame_png, read_dicom

PROBLEM = "urn:brain-mri-classifier:problem:"


def post(client: TestClient, data: bytes, name: str = "scan.dcm", **headers: str) -> object:
    return client.post("/predict", files={"file": (name, data)}, headers=headers)


def test_every_sample_is_classified_and_identified_by_its_uids(
    client: TestClient
) -> None:
    for seed, (name, make) in enumerate(sorted(DICOM_MAKERS.items())):
        data = make(synthetic_slice(seed))
        identity = read_dicom(data).identity
        response = client.post("/predict", files={"file": (f"{name}.dcm", data)})
        assert response.status_code == 200, (name, response.text)
        body = response.json()
        assert 0.0 <= body["tumor_probability"] <= 1.0
        assert body["dicom"] == identity.as_dict(), name
        assert body["dicom"]["modality"] == "MR"


def test_dicom_is_recognised_from_the_bytes_and_ordinary_images_say_dicom_null(
    client: TestClient, png: bytes
) -> None:
    data = DICOM_MAKERS["mr_16bit"](synthetic_slice(1))
    named_png = client.post("/predict", files={"file": ("slice.png", data)}).json()
    assert named_png["dicom"]["sop_instance_uid"] == read_dicom(data).identity.sop_instance_uid
    assert client.post("/predict", files={"file": ("scan.dcm", png)}).json()["dicom"] is None


def test_each_refusal_has_its_status_and_type(client: TestClient) -> None:
    grey = synthetic_slice(2)
    ct = assert_problem(
        client.post("/predict", files={"file": ("ct.dcm", mr_file(scaled(grey, 12),
                                                                   modality="CT"))}),
        422, "CT",
    )
    assert ct["type"] == PROBLEM + "unsupported_modality"
    assert (ct["modality"], ct["accepted_modalities"]) == ("CT", ["MR"])
    mpeg = assert_problem(
        client.post("/predict", files={"file": ("v.dcm", unsupported_syntax_file(grey))}),
        415, "MPEG2",
    )
    assert mpeg["transfer_syntax_uid"] == "1.2.840.10008.1.2.4.100"
    cases = {
        "no_pixel_data": sr_file(),
        "truncated": truncated(DICOM_MAKERS["mr_16bit"](grey)),
        "unsupported_pixels": rgb_file(grey),
    }
    for reason, data in cases.items():
        body = assert_problem(client.post("/predict", files={"file": ("x.dcm", data)}), 422)
        assert body["type"] == PROBLEM + reason
    metrics = client.get("/metrics").text
    for reason in ("unsupported_modality", "unsupported_transfer_syntax", "no_pixel_data",
                   "truncated"):
        assert f'mri_rejected_inputs_total{{reason="{reason}"}} 1.0' in metrics


def test_multi_frame_is_refused_by_predict_and_split_by_batch(
    client: TestClient
) -> None:
    slices = [synthetic_slice(seed) for seed in (3, 4, 5)]
    stack = multiframe_file(slices)
    body = assert_problem(post(client, stack), 422, "/predict/batch")
    assert (body["type"], body["frames"]) == (PROBLEM + "multi_frame", 3)

    single = DICOM_MAKERS["mr_12bit"](slices[0])
    files = [("files", ("stack.dcm", stack)), ("files", ("one.dcm", single)),
             ("files", ("ct.dcm", mr_file(scaled(slices[0], 12), modality="CT")))]
    results = client.post("/predict/batch", files=files).json()["results"]
    assert [(r["filename"], r.get("frame")) for r in results] == [
        ("stack.dcm", 1), ("stack.dcm", 2), ("stack.dcm", 3), ("one.dcm", 1), ("ct.dcm", None)
    ]
    assert results[4]["error"]["type"] == PROBLEM + "unsupported_modality"
    slices_read = read_dicom(stack)
    for index, frame in enumerate(slices_read.frames):
        alone = client.post("/predict", files={"file": ("f.png", frame_png(frame))}).json()
        # Batched and lone calls differ in float rounding only (as in test_no_skew).
        assert results[index]["tumor_probability"] == pytest.approx(
            alone["tumor_probability"], abs=1e-5
        )
        assert results[index]["dicom"] == slices_read.identity.as_dict()
    assert len({round(r["tumor_probability"], 6) for r in results[:3]}) == 3


def test_accept_dicom_answers_a_structured_report(
    client: TestClient, png: bytes
) -> None:
    data = DICOM_MAKERS["mr_jpeg2000"](synthetic_slice(6))
    identity = read_dicom(data).identity
    as_json = post(client, data).json()
    response = post(client, data, accept="application/dicom")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom"
    report = hd.sr.srread(io.BytesIO(response.content))
    assert report.StudyInstanceUID == identity.study_instance_uid
    (group,) = report.content.get_image_measurement_groups()
    assert group.source_images[0].referenced_sop_instance_uid == identity.sop_instance_uid
    (probability,) = group.get_measurements(name=codes.DCM.Probability)
    assert probability.value == pytest.approx(as_json["tumor_probability"], abs=1e-6)
    assert dcmread(io.BytesIO(response.content)).Modality == "SR"

    prefers_json = post(client, data, accept="application/json, application/dicom")
    assert prefers_json.headers["content-type"] == "application/json"
    refused = assert_problem(post(client, png, "a.png", accept="application/dicom"), 406, "DICOM")
    assert refused["type"] == PROBLEM + "not_acceptable"


def test_convert_returns_the_slice_the_model_classifies(
    client: TestClient, png: bytes
) -> None:
    slices = [synthetic_slice(seed) for seed in (7, 8)]
    stack = multiframe_file(slices)
    frames = read_dicom(stack).frames
    for number, frame in enumerate(frames, start=1):
        response = client.post(f"/convert?frame={number}", files={"file": ("s.dcm", stack)})
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.content))), frame)
    assert_problem(client.post("/convert?frame=3", files={"file": ("s.dcm", stack)}), 422, "3")
    unchanged = client.post("/convert", files={"file": ("a.png", png)})
    assert unchanged.content == png
    assert_problem(client.post("/convert", files={"file": ("sr.dcm", sr_file())}), 422)


def test_convert_requires_the_api_key_when_configured(make_client: Any, png: bytes) -> None:
    with make_client(api_key="k") as client:
        assert_problem(client.post("/convert", files={"file": ("a.png", png)}), 401)
        answer = client.post("/convert", files={"file": ("a.png", png)},
                             headers={"X-API-Key": "k"})
        assert answer.status_code == 200 and answer.content == png

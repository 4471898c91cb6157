"""Privacy: a DICOM file full of patient data (tests/dicom_files.py: PHI) goes through every
route, accepted and refused, with the service logging at DEBUG; no patient value appears in any
response (JSON, problem details, the SR, headers), any log record of any logger, any warning or
the metrics."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from dicom_files import PHI, multiframe_file, phi_file, truncated
from service_helpers import assert_problem
from synthetic_slices import synthetic_slice


def phi_tokens() -> set[str]:
    """Every patient value, and each of its words of 4 characters or more."""
    tokens = set(PHI.values()) | {"Doe^Jo"}
    for value in PHI.values():
        tokens |= {word for word in re.split(r"[\^\s,/-]+", value) if len(word) >= 4}
    return tokens - {"BRAIN", "CONTRAST", "POST", "follow", "chart", "Lane"}  # common words


def test_no_patient_data_leaves_the_service(
    make_client: Any, caplog: pytest.LogCaptureFixture,
    recwarn: pytest.WarningsRecorder,
) -> None:
    caplog.set_level(logging.DEBUG)
    mr = phi_file(synthetic_slice(9))
    ct = mr.replace(b"\x08\x00\x60\x00CS\x02\x00MR", b"\x08\x00\x60\x00CS\x02\x00CT")
    assert ct != mr
    texts: list[str] = []
    binaries: list[bytes] = []
    with make_client(log_level="debug") as client:
        answers = [
            client.post("/predict", files={"file": ("scan.dcm", mr)}),
            client.post("/predict", files={"file": ("scan.dcm", ct)}),
            client.post("/predict", files={"file": ("scan.dcm", truncated(mr))}),
            client.post("/predict", files={"file": ("scan.dcm", mr)},
                        headers={"Accept": "application/dicom"}),
            client.post("/predict/batch", files=[("files", ("a.dcm", mr)),
                                                 ("files", ("b.dcm", ct))]),
            client.post("/convert", files={"file": ("scan.dcm", mr)}),
            client.get("/metrics"),
        ]
        stack = multiframe_file([synthetic_slice(1), synthetic_slice(2)])
        answers.append(client.post("/predict", files={"file": ("s.dcm", stack)}))
    assert [answer.status_code for answer in answers] == [200, 422, 422, 200, 200, 200, 200, 422]
    assert_problem(answers[1], 422, "CT")
    for answer in answers:
        texts.append(str(dict(answer.headers)))
        if answer.headers["content-type"].startswith(("image/", "application/dicom")):
            binaries.append(answer.content)
        else:
            texts.append(answer.text)
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(warning.message) for warning in recwarn]
    assert any("model" in text for text in texts)  # the log really was captured
    said = "\n".join(texts)
    for token in phi_tokens():
        assert token not in said, token
    for value in PHI.values():
        for blob in binaries:
            assert value.encode() not in blob, value

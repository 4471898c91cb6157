"""Request bodies and answer readers for the service's routes beyond /predict with an image
(issue 17, deliverable 5): /explain (JSON, or the PNG overlay), DICOM uploads on /predict and
the Open Inference Protocol v2's infer. Every body is made at run time from the benchmark's own
images, in the order of their indices, so the answers are checked against the same raw-model
P(tumor) as /predict's."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.http_wire import WireResponse
from benchmarks.load import (
    AnswerReader,
    Body,
    json_answer,
    multipart_body,
    request_bodies,
    with_headers,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OIP_HEADER_LENGTH = "Inference-Header-Content-Length"
OIP_INPUT = "image"  # service/oip_wire.py INPUT_NAME
OIP_PROBABILITY = "tumor_probability"


def dicom_bodies(images: Sequence[bytes]) -> list[Body]:
    """Each image as a 16-bit MONOCHROME2 MR DICOM file (benchmarks/dicom_agreement.py's
    maker), uploaded to /predict as `file`. Made here, never stored."""
    from benchmarks.dicom_agreement import mr_file

    rng = np.random.default_rng(0)
    return [multipart_body("file", [(index, mr_file(image, rng))])
            for index, image in enumerate(images)]


def oip_body(index: int, image: bytes) -> Body:
    """An infer request with the binary tensor data extension: a JSON header naming one BYTES
    element, then that element (4-byte little-endian length, the file's bytes)."""
    element = struct.pack("<I", len(image)) + image
    header = json.dumps({"inputs": [{
        "name": OIP_INPUT, "shape": [1], "datatype": "BYTES",
        "parameters": {"binary_data_size": len(element)},
    }]}).encode()
    return Body(header + element, "application/octet-stream", (index,),
                ((OIP_HEADER_LENGTH, str(len(header))),))


def oip_bodies(images: Sequence[bytes]) -> list[Body]:
    return [oip_body(index, image) for index, image in enumerate(images)]


def oip_answer(response: WireResponse) -> list[float | None]:
    """P(tumor) of an infer answer whose outputs are JSON."""
    outputs = {output["name"]: output for output in json.loads(response.content)["outputs"]}
    return [float(value) for value in outputs[OIP_PROBABILITY]["data"]]


def png_answer(response: WireResponse) -> list[float | None]:
    """An /explain overlay carries no probability; a body that is not a PNG is an error."""
    if not response.content.startswith(PNG_MAGIC):
        raise ValueError(f"expected a PNG overlay, got {response.content[:16]!r}")
    return [None]


@dataclass(frozen=True)
class Route:
    """One extra row group on each service: its path, bodies, answer and concurrencies."""

    suffix: str  # the row's name is "<service> <suffix>"
    path: str
    bodies: Callable[[Sequence[bytes]], list[Body]]
    read_answer: AnswerReader
    concurrencies: tuple[int, ...]
    needs_explain: bool = False


def multipart_bodies(images: Sequence[bytes]) -> list[Body]:
    return request_bodies(images, 1)


def explain_png_bodies(images: Sequence[bytes]) -> list[Body]:
    return with_headers(request_bodies(images, 1), ("accept", "image/png"))


EXPLAIN_CONCURRENCY = (1, 8)


def routes(model_name: str, concurrency: Sequence[int]) -> dict[str, Route]:
    """The extra routes by name (`--routes`); explain at 1 and 8, the others as /predict."""
    return {
        "explain": Route("explain", "/explain", multipart_bodies, json_answer,
                         EXPLAIN_CONCURRENCY, needs_explain=True),
        "explain-png": Route("explain png", "/explain", explain_png_bodies, png_answer,
                             EXPLAIN_CONCURRENCY, needs_explain=True),
        "dicom": Route("dicom", "/predict", dicom_bodies, json_answer, tuple(concurrency)),
        "oip": Route("oip", f"/v2/models/{model_name}/infer", oip_bodies, oip_answer,
                     tuple(concurrency)),
    }


ROUTE_NAMES = tuple(routes("", ()))

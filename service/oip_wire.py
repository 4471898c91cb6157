"""The Open Inference Protocol v2's wire format for this model: reading an inference request
(JSON, or JSON followed by binary tensor data) into image bytes, and writing the response's
tensors (JSON, or binary when asked).

The protocol's binary tensor data extension: the body is a JSON header of
`Inference-Header-Content-Length` bytes followed by the tensors whose `parameters` carry
`binary_data_size`, in order; a BYTES element is a 4-byte little-endian length and its bytes.
In JSON, a BYTES input element is a base64 string (image bytes are not text), and a BYTES
output element (a label) is plain text.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.errors import InvalidInferenceRequest

INPUT_NAME = "image"
HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_MEDIA_TYPE = "application/octet-stream"
LENGTH_PREFIX = struct.Struct("<I")


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    data: list[Any] | None = None


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    parameters: dict[str, Any] = Field(default_factory=dict)


class InferenceRequest(BaseModel):
    """$inference_request of the protocol."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str  # "FP32" or "BYTES"
    values: Sequence[float] | Sequence[str]


def parse_request(body: bytes, header_length: str | None) -> tuple[InferenceRequest, bytes]:
    """The request's JSON object and the binary tensor data after it (empty without one)."""
    binary = b""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise InvalidInferenceRequest(
                f"{HEADER_LENGTH} is {header_length!r}; it must be the JSON header's size in "
                f"bytes, at most the body's {len(body)} bytes."
            )
        body, binary = body[: int(header_length)], body[int(header_length):]
    try:
        return InferenceRequest.model_validate(json.loads(body)), binary
    except (ValueError, ValidationError) as error:
        raise InvalidInferenceRequest(f"The inference request is not valid: {error}") from None


def split_bytes_elements(data: bytes, count: int) -> list[bytes]:
    """A binary BYTES tensor: each element a 4-byte little-endian length, then its bytes."""
    elements: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + LENGTH_PREFIX.size > len(data):
            break
        (length,) = LENGTH_PREFIX.unpack_from(data, offset)
        offset += LENGTH_PREFIX.size
        if offset + length > len(data):
            break
        elements.append(data[offset: offset + length])
        offset += length
    if offset != len(data) or len(elements) != count:
        raise InvalidInferenceRequest(
            f"The binary data of input {INPUT_NAME!r} does not hold {count} length-prefixed "
            "elements (4-byte little-endian length, then the bytes) and nothing else."
        )
    return elements


def decode_base64_elements(data: list[Any], count: int) -> list[bytes]:
    flat = data[0] if len(data) == 1 and isinstance(data[0], list) else data
    if len(flat) != count or not all(isinstance(item, str) for item in flat):
        raise InvalidInferenceRequest(
            f"Input {INPUT_NAME!r} must hold {count} base64 strings (its shape), not {flat!r:.80}."
        )
    try:
        return [base64.b64decode(item, validate=True) for item in flat]
    except binascii.Error:
        raise InvalidInferenceRequest(
            f"An element of input {INPUT_NAME!r} is not valid base64; BYTES elements in JSON "
            "are the encoded image's bytes in base64."
        ) from None


def read_images(request: InferenceRequest, binary: bytes) -> list[bytes]:
    """The encoded images of the one BYTES input `image` of shape [N]."""
    if [tensor.name for tensor in request.inputs] != [INPUT_NAME]:
        raise InvalidInferenceRequest(
            f"The model takes one input, {INPUT_NAME!r} (BYTES, shape [N]: encoded images); "
            f"the request has {[tensor.name for tensor in request.inputs]}."
        )
    tensor = request.inputs[0]
    if tensor.datatype != "BYTES" or len(tensor.shape) != 1 or tensor.shape[0] < 1:
        raise InvalidInferenceRequest(
            f"Input {INPUT_NAME!r} must be BYTES of shape [N] with N >= 1, not "
            f"{tensor.datatype} of shape {tensor.shape}."
        )
    count = tensor.shape[0]
    size = tensor.parameters.get("binary_data_size")
    if size is None:
        if binary or tensor.data is None:
            raise InvalidInferenceRequest(
                f"Input {INPUT_NAME!r} has no data: give `data` (base64 strings) or "
                f"`parameters.binary_data_size` with the bytes after the JSON header."
            )
        return decode_base64_elements(tensor.data, count)
    if not isinstance(size, int) or size != len(binary) or tensor.data is not None:
        raise InvalidInferenceRequest(
            f"Input {INPUT_NAME!r} declares binary_data_size {size!r}, but {len(binary)} bytes "
            f"follow the JSON header ({HEADER_LENGTH})."
        )
    return split_bytes_elements(binary, count)


def binary_outputs(
    request: InferenceRequest, available: Sequence[str]
) -> tuple[list[str], set[str]]:
    """Which outputs to return, in order, and which of them as binary data."""
    if request.outputs is None:
        everything_binary = bool(request.parameters.get("binary_data_output", False))
        return list(available), set(available) if everything_binary else set()
    unknown = [output.name for output in request.outputs if output.name not in available]
    if unknown:
        raise InvalidInferenceRequest(
            f"Unknown output(s) {unknown}; this model's outputs are {list(available)}."
        )
    names = [output.name for output in request.outputs]
    binary = {o.name for o in request.outputs if o.parameters.get("binary_data", False)}
    return names, binary


def tensor_bytes(tensor: OutputTensor) -> bytes:
    if tensor.datatype == "FP32":
        return np.asarray(tensor.values, dtype="<f4").tobytes()
    encoded = [str(value).encode() for value in tensor.values]
    return b"".join(LENGTH_PREFIX.pack(len(item)) + item for item in encoded)


def encode_response(
    header: dict[str, Any], tensors: Sequence[OutputTensor], binary: set[str]
) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers: JSON alone, or JSON then binary tensors."""
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for tensor in tensors:
        output: dict[str, Any] = {
            "name": tensor.name, "datatype": tensor.datatype, "shape": [len(tensor.values)]
        }
        if tensor.name in binary:
            chunks.append(tensor_bytes(tensor))
            output["parameters"] = {"binary_data_size": len(chunks[-1])}
        else:
            output["data"] = list(tensor.values)
        outputs.append(output)
    json_part = json.dumps({**header, "outputs": outputs}).encode()
    if not chunks:
        return json_part, {}
    return json_part + b"".join(chunks), {HEADER_LENGTH: str(len(json_part))}

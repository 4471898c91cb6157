"""POST /convert: the image the model classifies for an upload, as the bytes it decodes.

For a DICOM file that is the 8-bit slice the contract's pixel rule makes (what a viewer shows);
for a 16-bit TIFF, a CMYK JPEG and the like, their canonical 8-bit PNG; a PNG or JPEG the model
reads as it is comes back unchanged. The upload page shows it beside the answer, so a user sees
what was classified. It needs no model, so it answers while the model loads.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile
from starlette.responses import Response

from service.deps import ApiKeyDep, RuntimeDep
from service.errors import FrameOutOfRange
from service.problems import problem_responses
from service.routes.predict import ACCEPTED_NOTE, read_checked

router = APIRouter(tags=["predict"])

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The canonical image: PNG (or the upload itself when it is a PNG or JPEG "
        "the model decodes as it is).",
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}}
            for media_type in ("image/png", "image/jpeg")
        },
    }
}


@router.post(
    "/convert",
    summary="The image the model classifies for an upload (DICOM converted to 8-bit)",
    response_class=Response,
    responses={**IMAGE_RESPONSE, **problem_responses(400, 401, 408, 413, 415, 422)},
)
async def convert(
    file: Annotated[UploadFile, File(description=f"One file. {ACCEPTED_NOTE}")],
    runtime: RuntimeDep,
    _: ApiKeyDep,
    frame: Annotated[int, Query(ge=1, description="Which frame of a multi-frame DICOM file.")] = 1,
) -> Response:
    images = await read_checked(file, runtime)
    if frame > len(images):
        raise FrameOutOfRange(frame, len(images))
    canonical = images[frame - 1].canonical
    media_type = "image/png" if canonical.startswith(PNG_SIGNATURE) else "image/jpeg"
    return Response(canonical, media_type=media_type)

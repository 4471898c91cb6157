"""Re-encoding every image to one size, mode and format, to test for file-origin shortcuts.

`evaluate --reencode-png256` scores a model on 256x256 greyscale PNG versions of the images:
a model that learned anatomy scores about the same; one that learned the files' size, colour
mode or format (which differ between the classes of the public sets) does not.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from training.images import canonical_bytes

REENCODE_SIZE = 256


def reencode_png256(data: bytes) -> bytes:
    """The image, EXIF-transposed, as a 256x256 8-bit greyscale PNG (stretched, not padded)."""
    with Image.open(io.BytesIO(data)) as image:
        grey = ImageOps.exif_transpose(image).convert("L")
        resized = grey.resize((REENCODE_SIZE, REENCODE_SIZE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    resized.save(buffer, format="PNG")
    return canonical_bytes(buffer.getvalue())

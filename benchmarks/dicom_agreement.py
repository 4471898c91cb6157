"""Does a slice score the same as a DICOM file as it does as an ordinary image? (issue 12)

Each image of a split (from a split manifest) is stored as DICOM the way a scanner stores MR:
16-bit stored values with low bits in use, a rescale and a window under which a viewer shows
exactly the image's grey levels, in both photometric interpretations, signed and unsigned,
uncompressed and compressed (RLE, JPEG-LS, JPEG 2000). The original file (through the
canonical-bytes rule) and every DICOM version (through the DICOM pixel rule) are scored by the
exported signature; the script prints each variant's accuracy, its label agreement with the
original and the largest probability difference, both from the original file and from the 8-bit
greyscale PNG of the slice a viewer exports (the original decoded by Pillow: for JPEG and
colour files that differs from TensorFlow's own decoding of the original by a grey level here
and there).

    python -m benchmarks.dicom_agreement --model models/brain-tumor-cnn/1 \\
        --data ../shared/datasets/brain-tumor-mri \\
        --split-manifest docs/model-report/split-manifest.csv --split test
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

from model_contract import canonical_bytes, read_card
from model_contract.dicom import frame_png, read_dicom

# A viewer shows stored / 256 windowed at 128/256: exactly the 8-bit grey level, whatever the
# low byte holds (the rule rounds down, as DCMTK does).
SLOPE, CENTER, WIDTH = 1 / 256, 128.0, 256.0


def _dataset(stored: np.ndarray, photometric: str, intercept: float) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "MR"
    ds.set_pixel_data(stored, photometric, 16, generate_instance_uid=False)
    ds.RescaleSlope, ds.RescaleIntercept = SLOPE, intercept
    ds.WindowCenter, ds.WindowWidth = CENTER, WIDTH
    return ds


def _save(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    if syntax != ExplicitVRLittleEndian:
        ds.compress(syntax, generate_instance_uid=False)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _sixteen_bit(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stored values a viewer shows as `grey`: the grey level in the high byte, noise below."""
    low_byte = rng.integers(0, 256, grey.shape)
    return (grey.astype(np.int64) * 256 + low_byte).astype(np.uint16)


def mr_file(image: bytes, rng: np.random.Generator) -> bytes:
    """An image file as the most common MR DICOM: 16-bit MONOCHROME2, uncompressed (the
    serving benchmark's DICOM uploads)."""
    return _save(_dataset(_sixteen_bit(_grey(image), rng), "MONOCHROME2", 0.0))


def variants(grey: np.ndarray, rng: np.random.Generator) -> dict[str, bytes]:
    """The slice as DICOM, each version showing `grey` in a viewer."""
    unsigned = _sixteen_bit(grey, rng)
    signed = (unsigned.astype(np.int64) - 32768).astype(np.int16)
    # MONOCHROME1 stores the negative; no low bits, so the inverted value is whole.
    inverted = ((255 - grey.astype(np.int64)) * 256).astype(np.uint16)
    return {
        "16-bit MONOCHROME2": _save(_dataset(unsigned, "MONOCHROME2", 0.0)),
        "16-bit signed": _save(_dataset(signed, "MONOCHROME2", 128.0)),
        "16-bit MONOCHROME1": _save(_dataset(inverted, "MONOCHROME1", 0.0)),
        "RLE": _save(_dataset(unsigned, "MONOCHROME2", 0.0), RLELossless),
        "JPEG-LS": _save(_dataset(unsigned, "MONOCHROME2", 0.0), JPEGLSLossless),
        "JPEG 2000": _save(_dataset(unsigned, "MONOCHROME2", 0.0), JPEG2000Lossless),
    }


def _grey(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("L"), dtype=np.uint8)


def _scorer(version_dir: Path) -> Callable[[Sequence[bytes]], np.ndarray]:
    import tensorflow as tf

    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]

    def score(images: Sequence[bytes]) -> np.ndarray:
        out = [signature(image_bytes=tf.constant(list(images[i:i + 64])))["tumor_probability"]
               for i in range(0, len(images), 64)]
        return np.concatenate([np.asarray(batch) for batch in out])

    return score


def _rows(manifest: Path, split: str) -> list[dict[str, str]]:
    with manifest.open() as handle:
        return [row for row in csv.DictReader(handle) if row["split"] == split]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split-manifest", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--positive-folder", default="Brain Tumor",
                        help="the class folder holding the positive class (default: %(default)s)")
    args = parser.parse_args(argv)
    threshold = read_card(args.model).threshold
    rows = _rows(args.split_manifest, args.split)
    truth = np.array([row["label"] == args.positive_folder for row in rows])
    raw = [(args.data / row["path"]).read_bytes() for row in rows]
    greys = [_grey(data) for data in raw]
    rng = np.random.default_rng(0)
    files = [variants(grey, rng) for grey in greys]
    score = _scorer(args.model)
    original = score([canonical_bytes(data) for data in raw])
    exported = score([frame_png(grey) for grey in greys])
    print(f"{len(rows)} {args.split} images ({truth.sum()} positive), threshold {threshold:.4f}")
    print(f"{'as':<20} {'accuracy':>8}   vs original: {'same label':>10} {'max |dp|':>9}"
          f"   vs 8-bit PNG: {'same label':>10} {'max |dp|':>9}")
    print(f"{'original file':<20} {np.mean((original >= threshold) == truth):8.4f}")
    print(f"{'8-bit PNG':<20} {np.mean((exported >= threshold) == truth):8.4f}")
    for name in files[0]:
        dicom = score([frame_png(read_dicom(f[name]).frames[0]) for f in files])
        columns = [np.mean((dicom >= threshold) == truth)]
        for reference in (original, exported):
            columns += [np.mean((dicom >= threshold) == (reference >= threshold)),
                        np.abs(dicom - reference).max()]
        print(f"{name:<20} {columns[0]:8.4f}   {'':>13}{columns[1]:10.4f} {columns[2]:9.2e}"
              f"   {'':>14}{columns[3]:10.4f} {columns[4]:9.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

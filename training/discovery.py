"""Finding the labelled images in a data folder (one sub-folder per class) and reading them.

Checking the layout (`resolve_classes`) only lists folders and counts files, so the command
line can reject a wrong folder in a fraction of a second, before it reads a single image or
imports TensorFlow. `scan_images` then decodes every file once (`read_image`): a file that
cannot be read is kept in the result with its reason, never dropped silently.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.images import ImageMetadata, UnreadableImage, read_image

logger = logging.getLogger(__name__)

# Folder names understood without --positive-class, compared case-insensitively after
# turning "_" and "-" into spaces.
POSITIVE_NAMES = frozenset(
    {"brain tumor", "brain tumour", "tumor", "tumour", "yes", "unhealthy", "positive"}
)
NEGATIVE_NAMES = frozenset(
    {"healthy", "no", "normal", "notumor", "no tumor", "no tumour", "notumour", "negative"}
)
DEFAULT_MIN_IMAGES_PER_CLASS = 10
PROGRESS_EVERY = 500


class DataError(ValueError):
    """The data folder cannot be used; the message is one sentence meant for the user."""


@dataclass(frozen=True)
class ClassLayout:
    """The two class folders of a data folder and which one holds the positive class."""

    data_dir: Path
    positive: str
    negative: str

    @property
    def classes(self) -> list[str]:
        """Class names in label order: index 0 is the negative class, 1 the positive one."""
        return [self.negative, self.positive]


@dataclass(frozen=True)
class ImageRecord:
    """One readable image: where it is, its label and the bytes the model graph decodes."""

    path: str  # relative to the data folder, with "/" separators
    class_name: str
    label: int  # 1 for the positive class, 0 for the negative one
    sha256: str  # of the file's bytes as stored
    data: bytes  # canonical bytes (training/images.py)
    metadata: ImageMetadata  # of the file as stored, for the metadata-only baseline
    study_uid: str | None = None  # DICOM only: slices of one study are grouped together


@dataclass(frozen=True)
class UnreadableFile:
    path: str
    class_name: str
    reason: str


@dataclass(frozen=True)
class ScanResult:
    layout: ClassLayout
    records: list[ImageRecord]
    unreadable: list[UnreadableFile]

    def counts(self) -> dict[str, int]:
        """Readable images per class name."""
        counts = dict.fromkeys(self.layout.classes, 0)
        for record in self.records:
            counts[record.class_name] += 1
        return counts


def _normalise(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def list_class_files(class_dir: Path) -> list[Path]:
    """Every visible regular file below a class folder, in a stable (sorted) order."""
    files = [
        path for path in class_dir.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(class_dir).parts)
    ]
    return sorted(files, key=lambda path: path.relative_to(class_dir).as_posix())


def _quote_all(names: Sequence[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _positive_folder(data_dir: Path, class_dirs: list[str], positive_class: str | None) -> str:
    """The class folder holding tumor images: the one named, or the one recognised by name."""
    if positive_class is not None:
        wanted = _normalise(positive_class)
        matches = [name for name in class_dirs if _normalise(name) == wanted]
        if not matches:
            raise DataError(
                f"positive class '{positive_class}' is not one of the class folders "
                f"{_quote_all(class_dirs)} in '{data_dir}'."
            )
        return matches[0]
    positives = [n for n in class_dirs if _normalise(n) in POSITIVE_NAMES]
    negatives = [n for n in class_dirs if _normalise(n) in NEGATIVE_NAMES]
    if len(positives) == 1 and len(negatives) <= 1:
        return positives[0]
    if not positives and len(negatives) == 1:
        return next(n for n in class_dirs if n != negatives[0])
    raise DataError(
        f"cannot tell which of the class folders {_quote_all(class_dirs)} holds the "
        "positive (tumor) class; name it with --positive-class."
    )


def resolve_classes(
    data_dir: Path,
    positive_class: str | None = None,
    min_images_per_class: int = DEFAULT_MIN_IMAGES_PER_CLASS,
) -> ClassLayout:
    """Check the folder layout and decide which class folder is the positive one.

    Raises DataError with one sentence for: a missing folder, other than two class folders,
    a class with fewer than `min_images_per_class` files, an unknown or undecidable positive
    class.
    """
    if not data_dir.exists():
        raise DataError(f"data folder '{data_dir}' does not exist.")
    if not data_dir.is_dir():
        raise DataError(f"data folder '{data_dir}' is not a folder.")
    class_dirs = sorted(
        p.name for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if len(class_dirs) < 2:
        found = f" ({_quote_all(class_dirs)})" if class_dirs else ""
        raise DataError(
            f"data folder '{data_dir}' has {len(class_dirs)} class folder(s){found}; "
            "it needs two, one sub-folder of images per class."
        )
    if len(class_dirs) > 2:
        raise DataError(
            f"data folder '{data_dir}' has {len(class_dirs)} class folders "
            f"({_quote_all(class_dirs)}); the classifier needs exactly two."
        )

    positive = _positive_folder(data_dir, class_dirs, positive_class)
    negative = next(n for n in class_dirs if n != positive)

    for name in (positive, negative):
        n_files = len(list_class_files(data_dir / name))
        if n_files < min_images_per_class:
            raise DataError(
                f"class folder '{data_dir / name}' has {n_files} file(s); at least "
                f"{min_images_per_class} images per class are needed (--min-images-per-class)."
            )
    return ClassLayout(data_dir=data_dir, positive=positive, negative=negative)


def scan_images(layout: ClassLayout, min_images_per_class: int = 1) -> ScanResult:
    """Read every file of both classes; unreadable files are listed with their reason.

    Raises DataError when, after dropping unreadable files, a class keeps fewer than
    `min_images_per_class` images.
    """
    logger.info("scanning %s (positive class: '%s')", layout.data_dir, layout.positive)
    files = [
        (class_name, label, path)
        for label, class_name in enumerate(layout.classes)
        for path in list_class_files(layout.data_dir / class_name)
    ]
    records: list[ImageRecord] = []
    unreadable: list[UnreadableFile] = []
    for index, (class_name, label, path) in enumerate(files, start=1):
        relative = path.relative_to(layout.data_dir).as_posix()
        try:
            raw = path.read_bytes()
            image = read_image(raw)
            records.append(
                ImageRecord(
                    path=relative,
                    class_name=class_name,
                    label=label,
                    sha256=hashlib.sha256(raw).hexdigest(),
                    data=image.canonical,
                    metadata=image.metadata,
                    study_uid=image.study_uid,
                )
            )
        except UnreadableImage as error:
            unreadable.append(UnreadableFile(relative, class_name, str(error)))
        except OSError as error:
            unreadable.append(UnreadableFile(relative, class_name, f"cannot read file: {error}"))
        if index % PROGRESS_EVERY == 0 or index == len(files):
            logger.info("scanned %d/%d files (%d unreadable)", index, len(files), len(unreadable))
    for file in unreadable:
        logger.info("  unreadable, skipped: %s: %s", file.path, file.reason)
    result = ScanResult(layout=layout, records=records, unreadable=unreadable)
    for class_name, count in result.counts().items():
        if count < min_images_per_class:
            raise DataError(
                f"class folder '{layout.data_dir / class_name}' has {count} readable image(s); "
                f"at least {min_images_per_class} are needed (--min-images-per-class)."
            )
    return result

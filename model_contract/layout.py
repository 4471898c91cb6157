"""Where exported models live: TensorFlow Serving's `<models dir>/<name>/<version>/` folders.

A version is a folder named by a positive integer; the highest one is served, and a new one is
the next integer, never an overwrite. Exports are written to a hidden temporary folder beside
the versions and renamed into place, so a half-written version never looks like one here.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

SAVED_MODEL_FILE = "saved_model.pb"
MODEL_CARD_PATH = PurePosixPath("assets/model_card.json")


class LayoutError(ValueError):
    """The folder does not hold what the layout promises; the message says what and where."""


def version_numbers(model_root: Path) -> list[int]:
    """The model's versions, ascending: sub-folders named by a positive integer."""
    if not model_root.is_dir():
        return []
    names = (p.name for p in model_root.iterdir() if p.is_dir() and p.name.isdigit())
    return sorted(v for v in map(int, names) if v > 0)


def latest_version_dir(model_root: Path) -> Path | None:
    """The highest version's folder, or None when the model has no version yet."""
    versions = version_numbers(model_root)
    return model_root / str(versions[-1]) if versions else None


def next_version(model_root: Path) -> int:
    """One more than the highest existing version (1 for a new model)."""
    versions = version_numbers(model_root)
    return versions[-1] + 1 if versions else 1


def _only_model(models_dir: Path) -> str:
    names = sorted(
        p.name for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if not names:
        raise LayoutError(f"no model under {models_dir} (expected <name>/<version>/)")
    if len(names) > 1:
        raise LayoutError(
            f"several models under {models_dir} ({', '.join(names)}); set MRI_MODEL_NAME"
        )
    return names[0]


def find_version_dir(models_dir: Path, model_name: str | None) -> Path:
    """`<models_dir>/<name>/<highest version>/`; without a name, the folder's only model."""
    if not models_dir.is_dir():
        raise LayoutError(f"model folder {models_dir} does not exist")
    name = model_name if model_name is not None else _only_model(models_dir)
    model_root = models_dir / name
    if not model_root.is_dir():
        raise LayoutError(f"no model named {name!r} under {models_dir}")
    version_dir = latest_version_dir(model_root)
    if version_dir is None:
        raise LayoutError(f"no numeric version folder under {model_root}")
    return version_dir


def resolve_version_dir(path: Path) -> Path:
    """A version folder itself, or the highest version of a model folder; checked complete."""
    if not path.is_dir():
        raise LayoutError(f"model folder '{path}' does not exist.")
    version_dir = path if (path / SAVED_MODEL_FILE).is_file() else latest_version_dir(path)
    if version_dir is None or not (version_dir / SAVED_MODEL_FILE).is_file():
        raise LayoutError(
            f"'{path}' is not an exported model: it has no {SAVED_MODEL_FILE} and no "
            f"numbered version folder holding one."
        )
    if not (version_dir / MODEL_CARD_PATH).is_file():
        raise LayoutError(f"exported model '{version_dir}' has no {MODEL_CARD_PATH}.")
    return version_dir

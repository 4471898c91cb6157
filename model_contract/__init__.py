"""The model contract: what `training/` exports and `service/` loads, written once.

Both packages import this one and never each other. It needs only the standard library, NumPy
and Pillow (no TensorFlow), so it loads in a fraction of a second on either side:

- `signature`: the SavedModel's signature names and tensor keys;
- `layout`: the `<models dir>/<name>/<version>/` folders and the one scanner of versions;
- `card`: the model card's schema (typed dataclasses), its one reader and one writer;
- `canonical`: the canonical-bytes rule, which turns any accepted image into bytes the
  exported graph decodes;
- `dicom`: the DICOM pixel rule (a DICOM file -> the 8-bit frames a viewer shows) and its
  checks; not re-exported here, since it imports pydicom: `from model_contract import dicom`.

docs/model-contract.md describes the same contract in prose; tests/contract checks the two
agree.
"""

from model_contract.canonical import (
    EXIF_ORIENTATION_TAG,
    PASSTHROUGH_FORMATS,
    PASSTHROUGH_MODES,
    canonical_bytes,
    canonical_from_image,
    load_image,
    passes_through,
    to_8bit,
)
from model_contract.card import (
    Acceptance,
    CardError,
    ExplainSpec,
    InputGate,
    InputSpec,
    ModelCard,
    OodRefusal,
    OperatingPoint,
    OperatingPoints,
    card_from_dict,
    card_to_dict,
    read_card,
    write_card,
)
from model_contract.layout import (
    MODEL_CARD_PATH,
    SAVED_MODEL_FILE,
    LayoutError,
    find_version_dir,
    latest_version_dir,
    next_version,
    resolve_version_dir,
    version_numbers,
)
from model_contract.signature import (
    ACCEPTED_ENCODINGS,
    EXPLAIN_SIGNATURE,
    GATE_OUTPUT_KEY,
    HEATMAP_KEY,
    INPUT_KEY,
    OUTPUT_KEY,
    SERVING_SIGNATURE,
)

__all__ = [
    "ACCEPTED_ENCODINGS",
    "EXIF_ORIENTATION_TAG",
    "EXPLAIN_SIGNATURE",
    "GATE_OUTPUT_KEY",
    "HEATMAP_KEY",
    "INPUT_KEY",
    "MODEL_CARD_PATH",
    "OUTPUT_KEY",
    "PASSTHROUGH_FORMATS",
    "PASSTHROUGH_MODES",
    "SAVED_MODEL_FILE",
    "SERVING_SIGNATURE",
    "Acceptance",
    "CardError",
    "ExplainSpec",
    "InputGate",
    "InputSpec",
    "LayoutError",
    "ModelCard",
    "OodRefusal",
    "OperatingPoint",
    "OperatingPoints",
    "canonical_bytes",
    "canonical_from_image",
    "load_image",
    "card_from_dict",
    "card_to_dict",
    "find_version_dir",
    "latest_version_dir",
    "next_version",
    "passes_through",
    "read_card",
    "resolve_version_dir",
    "to_8bit",
    "version_numbers",
    "write_card",
]

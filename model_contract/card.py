"""The model card (`assets/model_card.json`): its schema, its one reader and its one writer.

The sections the service acts on are typed; the ones it only shows (metrics, training
configuration, library versions) stay JSON objects. Optional sections (`input_gate`,
`explain`, `operating_points`) are None on cards that predate them. Keys this schema does not
know are kept in `extra` and written back, so a card survives a read and a write unchanged. To
add a section: a frozen dataclass with `from_dict`, a field on `ModelCard`, one line in
`card_from_dict`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from model_contract.layout import MODEL_CARD_PATH
from model_contract.signature import (
    ACCEPTED_ENCODINGS,
    EXPLAIN_SIGNATURE,
    GATE_OUTPUT_KEY,
    HEATMAP_KEY,
    INPUT_KEY,
    OUTPUT_KEY,
    SERVING_SIGNATURE,
)

JsonObject = dict[str, Any]


class CardError(ValueError):
    """The model card is missing, unreadable or invalid; the message names the file."""


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_object(raw: JsonObject, key: str) -> JsonObject | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"{key} must be a JSON object")
    return value


@dataclass(frozen=True)
class InputSpec:
    """How to call the serving signature, and what the graph does to an image."""

    signature: str = SERVING_SIGNATURE
    input_key: str = INPUT_KEY
    output_key: str = OUTPUT_KEY
    accepted_encodings: tuple[str, ...] = ACCEPTED_ENCODINGS
    preprocessing: JsonObject = field(default_factory=dict)
    description: str = ""

    @classmethod
    def from_dict(cls, raw: JsonObject) -> InputSpec:
        return cls(
            signature=str(raw.get("signature", SERVING_SIGNATURE)),
            input_key=str(raw.get("input_key", INPUT_KEY)),
            output_key=str(raw.get("output_key", OUTPUT_KEY)),
            accepted_encodings=tuple(str(e) for e in raw.get("accepted_encodings", ())),
            preprocessing=dict(raw.get("preprocessing", {})),
            description=str(raw.get("description", "")),
        )


@dataclass(frozen=True)
class Acceptance:
    """Share of real brain MRI slices the gate lets through, per split."""

    validation: float | None = None
    test: float | None = None

    @classmethod
    def from_dict(cls, raw: JsonObject) -> Acceptance:
        return cls(_optional_float(raw.get("validation")), _optional_float(raw.get("test")))


@dataclass(frozen=True)
class OodRefusal:
    """Share of non-MRI images the gate refuses: `overall` and `by_kind` over the far
    out-of-distribution kinds, `near_ood` (head CT, non-brain MR) reported apart."""

    overall: float
    by_kind: dict[str, float] = field(default_factory=dict)
    near_ood: dict[str, float] | None = None

    @classmethod
    def from_dict(cls, raw: JsonObject) -> OodRefusal:
        by_kind = {str(k): float(v) for k, v in raw.get("by_kind", {}).items()}
        near = raw.get("near_ood")
        near_ood = None if near is None else {str(k): float(v) for k, v in near.items()}
        return cls(float(raw["overall"]), by_kind, near_ood)


@dataclass(frozen=True)
class InputGate:
    """The optional brain-MRI input gate: passes when score >= threshold."""

    method: str
    threshold: float
    description: str = ""
    output_key: str = GATE_OUTPUT_KEY
    target_acceptance: float | None = None
    fitted_on: str = ""
    acceptance: Acceptance | None = None
    ood_refusal: OodRefusal | None = None

    @classmethod
    def from_dict(cls, raw: JsonObject) -> InputGate:
        acceptance, refusal = raw.get("acceptance"), raw.get("ood_refusal")
        return cls(
            method=str(raw["method"]),
            threshold=float(raw["threshold"]),
            description=str(raw.get("description", "")),
            output_key=str(raw.get("output_key", GATE_OUTPUT_KEY)),
            target_acceptance=_optional_float(raw.get("target_acceptance")),
            fitted_on=str(raw.get("fitted_on", "")),
            acceptance=None if acceptance is None else Acceptance.from_dict(acceptance),
            ood_refusal=None if refusal is None else OodRefusal.from_dict(refusal),
        )


@dataclass(frozen=True)
class ExplainSpec:
    """The optional explanation signature: a Grad-CAM heatmap beside P(tumor)."""

    layer: str
    signature: str = EXPLAIN_SIGNATURE
    method: str = "grad-cam"
    heatmap_key: str = HEATMAP_KEY

    @classmethod
    def from_dict(cls, raw: JsonObject) -> ExplainSpec:
        return cls(
            layer=str(raw["layer"]),
            signature=str(raw.get("signature", EXPLAIN_SIGNATURE)),
            method=str(raw.get("method", "grad-cam")),
            heatmap_key=str(raw.get("heatmap_key", HEATMAP_KEY)),
        )


@dataclass(frozen=True)
class OperatingPoint:
    """A named decision threshold: positive when P(tumor) >= threshold.

    `summary` says in plain words what it does on the test split; `test` holds its measured
    sensitivity, specificity (each {"value", "ci95"}) and more; `chosen_on` what picked it."""

    threshold: float
    rule: str | None = None
    summary: str | None = None
    chosen_on: str | None = None
    test: JsonObject | None = None
    chosen_on_metrics: JsonObject | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("an operating point's threshold must be in [0, 1]")

    @classmethod
    def from_dict(cls, raw: JsonObject) -> OperatingPoint:
        return cls(
            threshold=float(raw["threshold"]),
            rule=_optional_str(raw.get("rule")),
            summary=_optional_str(raw.get("summary")),
            chosen_on=_optional_str(raw.get("chosen_on")),
            test=_optional_object(raw, "test"),
            chosen_on_metrics=_optional_object(raw, "chosen_on_metrics"),
        )


@dataclass(frozen=True)
class OperatingPoints:
    """The card's `operating_points`: {"default": name, name: {threshold, ...}, ...}."""

    default: str
    points: dict[str, OperatingPoint]

    def __post_init__(self) -> None:
        if self.default not in self.points:
            raise ValueError(f"the default operating point {self.default!r} is not defined")
        if "default" in self.points:
            raise ValueError("'default' cannot name an operating point")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.points)

    @classmethod
    def from_dict(cls, raw: JsonObject) -> OperatingPoints:
        points = {str(name): OperatingPoint.from_dict(value)
                  for name, value in raw.items() if name != "default"}
        return cls(default=str(raw["default"]), points=points)

    def to_json(self) -> JsonObject:
        return {"default": self.default,
                **{name: _plain(point) for name, point in self.points.items()}}


@dataclass(frozen=True)
class ModelCard:
    """The whole card. Field order is the order the writer uses."""

    name: str
    version: int
    classes: tuple[str, str]
    positive_class: str
    threshold: float
    created_at: str | None = None
    threshold_rule: str | None = None
    input: InputSpec = field(default_factory=InputSpec)
    # Shown, not acted on: free-form JSON objects (None when the card lacks them).
    architecture: JsonObject | None = None
    metrics: JsonObject | None = None
    metadata_only_baseline: JsonObject | None = None
    data_fingerprint: str | None = None
    training: JsonObject | None = None
    library_versions: dict[str, str] | None = None
    intended_use: str | None = None
    input_gate: InputGate | None = None
    explain: ExplainSpec | None = None
    # Named thresholds (issue 13); None on older cards, which use `threshold` alone.
    operating_points: OperatingPoints | None = None
    extra: JsonObject = field(default_factory=dict)  # keys this schema does not know

    def __post_init__(self) -> None:
        if len(self.classes) != 2 or self.positive_class not in self.classes:
            raise ValueError("classes must be two names, one of them positive_class")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be in [0, 1]")

    def operating_point(self, name: str | None = None) -> tuple[str | None, float]:
        """The operating point to use and its threshold: `name`, else the card's default.
        Cards without operating points answer (None, threshold); KeyError for an unknown name
        (or any name on a card without operating points)."""
        points = self.operating_points
        if points is None:
            if name is not None:
                raise KeyError(name)
            return None, self.threshold
        chosen = points.default if name is None else name
        return chosen, points.points[chosen].threshold

    @property
    def negative_class(self) -> str:
        return next(c for c in self.classes if c != self.positive_class)

    def label_for(self, probability: float, threshold: float | None = None) -> str:
        """`positive_class` when P(tumor) >= threshold (the card's by default), else the other
        class."""
        limit = self.threshold if threshold is None else threshold
        return self.positive_class if probability >= limit else self.negative_class


_KNOWN_KEYS = frozenset(f.name for f in fields(ModelCard)) - {"extra"}


def card_from_dict(
    raw: JsonObject, default_name: str = "", default_version: int = 0
) -> ModelCard:
    """Parse a card; ValueError, KeyError or TypeError when it breaks the schema."""
    classes = [str(c) for c in raw["classes"]]
    if len(classes) != 2:
        raise ValueError("classes must be two names, one of them positive_class")
    gate, explain = raw.get("input_gate"), raw.get("explain")
    points = _optional_object(raw, "operating_points")
    return ModelCard(
        name=str(raw.get("name", default_name)),
        version=int(raw.get("version", default_version)),
        classes=(classes[0], classes[1]),
        positive_class=str(raw["positive_class"]),
        threshold=float(raw["threshold"]),
        created_at=raw.get("created_at"),
        threshold_rule=raw.get("threshold_rule"),
        input=InputSpec.from_dict(raw.get("input", {})),
        architecture=_optional_object(raw, "architecture"),
        metrics=_optional_object(raw, "metrics"),
        metadata_only_baseline=_optional_object(raw, "metadata_only_baseline"),
        data_fingerprint=raw.get("data_fingerprint"),
        training=_optional_object(raw, "training"),
        library_versions=_optional_object(raw, "library_versions"),
        intended_use=raw.get("intended_use"),
        input_gate=None if gate is None else InputGate.from_dict(gate),
        explain=None if explain is None else ExplainSpec.from_dict(explain),
        operating_points=None if points is None else OperatingPoints.from_dict(points),
        extra={k: v for k, v in raw.items() if k not in _KNOWN_KEYS},
    )


def _plain(value: Any) -> Any:
    """JSON values: dataclasses as objects without their None fields, tuples as lists."""
    if isinstance(value, OperatingPoints):
        return value.to_json()
    if is_dataclass(value) and not isinstance(value, type):
        items = ((f.name, getattr(value, f.name)) for f in fields(value))
        return {name: _plain(item) for name, item in items if item is not None}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def card_to_dict(card: ModelCard) -> JsonObject:
    """The card as JSON values; absent optional sections are left out."""
    body: JsonObject = _plain(card)
    extra = body.pop("extra", {})
    return {**body, **extra}


def read_card(version_dir: Path) -> ModelCard:
    """Read `<version_dir>/assets/model_card.json`; name and version default to the folders'."""
    path = version_dir / MODEL_CARD_PATH
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(f"model card {path} is missing") from None
    except (OSError, ValueError) as error:
        raise CardError(f"model card {path} is unreadable: {error}") from None
    try:
        if not isinstance(raw, dict):
            raise TypeError("the card is not a JSON object")
        default_version = int(version_dir.name) if version_dir.name.isdigit() else 0
        return card_from_dict(raw, version_dir.parent.name, default_version)
    except (KeyError, TypeError, ValueError) as error:
        raise CardError(f"model card {path} is invalid: {error!r}") from None


def write_card(version_dir: Path, card: ModelCard) -> Path:
    """Write the card as `<version_dir>/assets/model_card.json` (strict JSON: no NaN)."""
    path = version_dir / MODEL_CARD_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(card_to_dict(card), indent=2, allow_nan=False) + "\n",
                    encoding="utf-8")
    return path

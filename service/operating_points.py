"""The model's operating points as a reader sees them: each threshold with its measured test
sensitivity and specificity, and what they mean in plain words ("flags about 90 of 100 tumor
slices"). Every figure comes from the card; a card without measurements says so.

A card may name several points (`operating_points`: {"default": name, name: {threshold,
test: {sensitivity, specificity, ...}, ...}}, see docs/model-contract.md); otherwise its single
threshold is "the model's operating point", with the test split's recall and specificity from
`metrics`. Which point answers a request is service/operating_point_choice.py's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model_contract import ModelCard, OperatingPoints
from model_contract import OperatingPoint as ContractPoint

SINGLE_POINT_NAME = "the model's operating point"


@dataclass(frozen=True)
class Measure:
    """A measured rate with its 95% interval when the card gives one."""

    value: float
    ci95: tuple[float, float] | None = None

    @classmethod
    def from_json(cls, raw: Any) -> Measure | None:
        """`0.9`, or `{"value": 0.9, "ci95": [0.86, 0.93]}`; None for anything else."""
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return cls(float(raw))
        if not isinstance(raw, dict) or not isinstance(raw.get("value"), int | float):
            return None
        interval = raw.get("ci95")
        ci95 = None
        if isinstance(interval, list | tuple) and len(interval) == 2:
            ci95 = (float(interval[0]), float(interval[1]))
        return cls(float(raw["value"]), ci95)

    def per_hundred(self) -> str:
        """The rate as "about N of 100", with its interval when known."""
        words = f"about {round(100 * self.value)} of 100"
        if self.ci95 is not None:
            low, high = (round(100 * bound) for bound in self.ci95)
            words += f" (95% interval {low} to {high})"
        return words

    def complement(self) -> Measure:
        """1 - the rate (specificity to false-positive rate); the interval flips."""
        ci95 = None if self.ci95 is None else (1 - self.ci95[1], 1 - self.ci95[0])
        return Measure(1 - self.value, ci95)


@dataclass(frozen=True)
class OperatingPoint:
    name: str
    threshold: float
    sensitivity: Measure | None
    specificity: Measure | None
    is_default: bool

    def plain_words(self, positive: str = "tumor", negative: str = "healthy") -> str:
        if self.sensitivity is None or self.specificity is None:
            return (f"P({positive}) at or above {self.threshold:.3f} is flagged; this model's "
                    "card holds no measured sensitivity or specificity for it.")
        flagged = self.specificity.complement()
        return (f"On the test split it flags {self.sensitivity.per_hundred()} {positive} "
                f"slices; {flagged.per_hundred()} {negative} slices are flagged too.")


def _measured(point: ContractPoint, key: str) -> Measure | None:
    """A rate from the point's `test` section (sensitivity, specificity)."""
    return Measure.from_json((point.test or {}).get(key))


def _named_points(points: OperatingPoints) -> list[OperatingPoint]:
    named = [
        OperatingPoint(
            name=name,
            threshold=point.threshold,
            sensitivity=_measured(point, "sensitivity"),
            specificity=_measured(point, "specificity"),
            is_default=name == points.default,
        )
        for name, point in points.points.items()
    ]
    return sorted(named, key=lambda point: not point.is_default)


def operating_points(card: ModelCard) -> list[OperatingPoint]:
    """The card's operating points, the default first."""
    if card.operating_points is not None:
        return _named_points(card.operating_points)
    metrics = card.metrics or {}
    return [OperatingPoint(
        name=SINGLE_POINT_NAME,
        threshold=card.threshold,
        sensitivity=Measure.from_json(metrics.get("sensitivity", metrics.get("recall"))),
        specificity=Measure.from_json(metrics.get("specificity")),
        is_default=True,
    )]

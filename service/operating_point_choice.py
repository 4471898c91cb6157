"""Which decision threshold answers a request, among the model card's named operating points.

A request's `?operating_point=` wins; else `MRI_OPERATING_POINT`, when the card defines it;
else the card's default. A model whose card has no operating points answers with the card's
threshold and `operating_point: null`, as before operating points existed.
"""

from __future__ import annotations

from dataclasses import dataclass

from model_contract import ModelCard
from service.errors import UnknownOperatingPoint


@dataclass(frozen=True)
class Decision:
    """The operating point used (None: the card has none) and its threshold."""

    operating_point: str | None
    threshold: float


def available(card: ModelCard) -> tuple[str, ...]:
    return () if card.operating_points is None else card.operating_points.names


def configured_is_usable(card: ModelCard, configured: str | None) -> bool:
    """Whether MRI_OPERATING_POINT (when set) names one of the card's operating points."""
    return configured is None or configured in available(card)


def decide(card: ModelCard, requested: str | None, configured: str | None) -> Decision:
    """The operating point for one request; UnknownOperatingPoint for a name the card lacks."""
    if requested is not None:
        if requested not in available(card):
            raise UnknownOperatingPoint(requested, available(card))
        return Decision(*card.operating_point(requested))
    if configured is not None and configured in available(card):
        return Decision(*card.operating_point(configured))
    return Decision(*card.operating_point(None))

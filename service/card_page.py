"""The model card as an HTML page (GET /model for a browser), in the spirit of Mitchell et al.
(2019), "Model Cards for Model Reporting": intended use and limits, training data, test
metrics with intervals, plots, operating points, the input gate, version and fingerprint.

The card is data: the template autoescapes every value it prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from model_contract import ModelCard
from service.operating_points import Measure, operating_points

TEMPLATES = Path(__file__).resolve().parent / "templates"
ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
METRIC_NAMES = {
    "accuracy": "Accuracy",
    "recall": "Sensitivity (recall)",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "precision": "Precision (positive predictive value)",
    "f1": "F1",
    "roc_auc": "ROC AUC",
    "pr_auc": "Precision-recall AUC",
    "brier": "Brier score (lower is better)",
}
PLOT_ROUTE = "/model/plots/"


@dataclass(frozen=True)
class MetricRow:
    name: str
    model: Measure | None
    baseline: Measure | None


def measures(metrics: dict[str, Any] | None) -> dict[str, Measure]:
    """The metrics given as {value, ci95}, by key (counts and settings left out)."""
    found = {}
    for key, raw in (metrics or {}).items():
        measure = Measure.from_json(raw) if isinstance(raw, dict) else None
        if measure is not None:
            found[key] = measure
    return found


def metric_rows(card: ModelCard) -> list[MetricRow]:
    model = measures(card.metrics)
    baseline_section = card.metadata_only_baseline or {}
    baseline = measures(baseline_section.get("metrics"))
    return [MetricRow(METRIC_NAMES.get(key, key), value, baseline.get(key))
            for key, value in model.items()]


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested JSON as (path, text) rows, for the sections the card only shows."""
    if isinstance(value, dict):
        rows: list[tuple[str, str]] = []
        for key, item in value.items():
            rows.extend(flatten(item, f"{prefix} / {key}" if prefix else str(key)))
        return rows
    if isinstance(value, list):
        return [(prefix, ", ".join(str(item) for item in value))]
    return [(prefix, "not set" if value is None else str(value))]


def split_counts(training: dict[str, Any]) -> tuple[list[str], list[tuple[str, list[Any]]]]:
    """The training configuration's slices per split as (columns, rows), for a table."""
    split = training.get("split")
    counts = split.get("counts") if isinstance(split, dict) else None
    if not isinstance(counts, dict):
        return [], []
    columns: list[str] = []
    for per_split in counts.values():
        columns.extend(key for key in per_split if key not in columns)
    rows = [(str(name), [per_split.get(column, "") for column in columns])
            for name, per_split in counts.items()]
    return columns, rows


def configuration(training: dict[str, Any]) -> list[tuple[str, str]]:
    """The training configuration's rows, the per-split counts left to their own table."""
    return [(key, value) for key, value in flatten(training)
            if not key.startswith("split / counts")]


def plot_file(card: ModelCard, version_dir: Path, name: str) -> Path | None:
    """The PNG the card's `plots` section names `name`, if it is a file inside the version
    folder (a card cannot point the service at any other file)."""
    plots = card.extra.get("plots")
    relative = plots.get(name) if isinstance(plots, dict) else None
    if not isinstance(relative, str):
        return None
    root = version_dir.resolve()
    path: Path = (root / relative).resolve()
    if not path.is_relative_to(root) or path.suffix.lower() != ".png" or not path.is_file():
        return None
    return path


def plots(card: ModelCard, version_dir: Path) -> list[tuple[str, str]]:
    """(title, URL) of each plot the card names and the model folder holds."""
    named = card.extra.get("plots")
    if not isinstance(named, dict):
        return []
    return [(str(name), PLOT_ROUTE + str(name)) for name in named
            if plot_file(card, version_dir, str(name)) is not None]


def render_card_page(card: ModelCard, version_dir: Path, fingerprint: str | None) -> str:
    metrics = card.metrics or {}
    return ENVIRONMENT.get_template("model_card.html").render(
        card=card,
        points=operating_points(card),
        metric_rows=metric_rows(card),
        counts={key: metrics.get(key) for key in ("split", "n", "n_positive", "n_negative")},
        confusion=measures(metrics.get("confusion_matrix")),
        baseline=card.metadata_only_baseline,
        training=configuration(card.training or {}),
        split_counts=split_counts(card.training or {}),
        preprocessing=flatten(card.input.preprocessing),
        architecture=flatten(card.architecture or {}),
        libraries=flatten(card.library_versions or {}),
        plots=plots(card, version_dir),
        fingerprint=fingerprint,
    )

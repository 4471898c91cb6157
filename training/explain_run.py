"""`python -m training.explain_run`: the Grad-CAM checks of the model report, end to end.

    python -m training.explain_run --version-dir MODELS/brain-tumor-cnn/N \
        --data DATA --manifest RUN/manifest.csv --out RUN/explain-checks

checks the `explain` signature of an exported version (see explain_checks.py). The
re-initialised copy for the randomisation check is the same architecture built with another
seed and exported the same way, into a temporary folder. `--from-weights W.weights.h5` first
re-exports a training checkpoint, with the card of `--version-dir`, into `--models-dir`
(for models exported before the `explain` signature existed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from model_contract import ModelCard, read_card
from training.architectures import build_model
from training.ensemble import build_ensemble
from training.explain_checks import ExplainedModel, Slice, check_slice, summarise, tumour_slices
from training.explain_figures import plot_distributions, plot_examples
from training.export import export_model
from training.preprocessing import PreprocessConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExplainCheckOptions:
    version_dir: Path
    data_dir: Path
    manifest: Path
    out_dir: Path
    split: str = "test"
    fraction: float = 0.1
    random_draws: int = 10
    fill: str = "black"  # what blanked pixels become: black, or the blurred image
    seed: int = 0
    randomised_seed: int = 1
    examples: int = 4


def _rebuild(card: ModelCard, seed: int) -> tuple[keras.Model, PreprocessConfig]:
    """The card's network (for an ensemble: as many members, the same views and calibration),
    freshly initialised."""
    config = PreprocessConfig(**card.input.preprocessing)
    architecture = card.architecture or {}
    if "members" not in architecture:
        return build_model(architecture.get("name", "compact"), config, seed=seed,
                           augment=False), config
    members = [build_model(architecture["member"], config, seed=seed + k, augment=False)
               for k in range(int(architecture["members"]))]
    calibration = architecture.get("calibration", {})
    return build_ensemble(members, float(calibration.get("temperature", 1.0)),
                          bool(architecture.get("flip_tta")),
                          float(calibration.get("intercept", 0.0))), config


def export_checkpoint(weights: Path, source_version_dir: Path, models_dir: Path) -> Path:
    """Re-export a checkpoint of the model `source_version_dir` holds, with today's export
    (the `explain` signature included) and that version's card."""
    card = read_card(source_version_dir)
    model, config = _rebuild(card, seed=0)
    model.load_weights(str(weights))
    return export_model(model, config, card, models_dir, card.name)


def export_randomised(version_dir: Path, seed: int, models_dir: Path) -> Path:
    """The same architecture and preprocessing with freshly initialised weights."""
    card = read_card(version_dir)
    keras.utils.set_random_seed(seed)
    model, config = _rebuild(card, seed=seed)
    randomised = dataclasses.replace(card, intended_use="randomisation check only")
    return export_model(model, config, randomised, models_dir, "randomised")


def _examples(
    slices: Sequence[Slice], trained: ExplainedModel, randomised: ExplainedModel, count: int,
    path: Path,
) -> Path:
    chosen = np.random.default_rng(0).choice(len(slices), min(count, len(slices)), replace=False)
    items = [slices[i] for i in sorted(chosen)]
    scans = [tf.io.decode_image(s.data, expand_animations=False).numpy() for s in items]
    return plot_examples(
        scans,
        [trained.explain(s.data)[1] for s in items],
        [randomised.explain(s.data)[1] for s in items],
        path,
    )


def run_explain_checks(options: ExplainCheckOptions) -> dict[str, Any]:
    """Run both checks, write results.json, the figures, and return the summary."""
    options.out_dir.mkdir(parents=True, exist_ok=True)
    slices = tumour_slices(options.data_dir, options.manifest, options.split)
    log.info("%d tumour slices in the %s split", len(slices), options.split)
    trained = ExplainedModel(options.version_dir)
    with tempfile.TemporaryDirectory() as scratch:
        randomised = ExplainedModel(
            export_randomised(options.version_dir, options.randomised_seed, Path(scratch))
        )
        rng = np.random.default_rng(options.seed)
        results = []
        for index, item in enumerate(slices, start=1):
            results.append(check_slice(
                item, trained, randomised, rng, options.fraction, options.random_draws,
                options.fill,
            ))
            if index % 50 == 0:
                log.info("checked %d/%d slices", index, len(slices))
        _examples(slices, trained, randomised, options.examples,
                  options.out_dir / "explain-examples.png")
    plot_distributions(results, options.out_dir / "explain-checks.png")
    summary = {"version_dir": str(options.version_dir), "split": options.split,
               "fill": options.fill, **summarise(results, options.fraction)}
    (options.out_dir / "results.json").write_text(json.dumps(
        {"summary": summary, "slices": [asdict(r) for r in results]}, indent=1
    ) + "\n")
    return summary


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.explain_run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, dest="data_dir")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, dest="out_dir")
    parser.add_argument("--split", default="test")
    parser.add_argument("--fill", choices=("black", "blur"), default="black",
                        help="what blanked pixels become (default: black)")
    parser.add_argument("--from-weights", type=Path, default=None)
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="where --from-weights exports to (never the shipped models/)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = _parser().parse_args(argv)
    version_dir: Path = args.version_dir
    if args.from_weights is not None:
        if args.models_dir is None:
            _parser().error("--from-weights needs --models-dir")
        version_dir = export_checkpoint(args.from_weights, version_dir, args.models_dir)
        log.info("re-exported %s as %s", args.from_weights, version_dir)
    summary = run_explain_checks(ExplainCheckOptions(
        version_dir=version_dir, data_dir=args.data_dir, manifest=args.manifest,
        out_dir=args.out_dir, split=args.split, fill=args.fill,
    ))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m training.explain_variants`: which Grad-CAM layer passes the deletion test best.

    python -m training.explain_variants --version-dir MODELS/brain-tumor-cnn/N \
        --weights RUN/checkpoints/best.weights.h5 --data DATA --manifest MANIFEST \
        --split validation --out RUN/explain-variants.json

For every tumour slice of one split it computes Grad-CAM of the tumor logit at the end of each
convolution stage of the network (one map per grid size: 64, 32, 16 and 8 cells a side at
128 px input) and at averages of the last few, maps each onto the upload's pixel grid exactly as
the `explain` signature does (gradcam.py), and runs the deletion test of explain_checks.py on
each: the same random draws for every variant, P(tumor) from the exported `serving_default`.
Pick the variant on the validation split; report the test split with `explain_run`.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from model_contract import read_card
from training.architectures import build_model
from training.explain_checks import (
    QUANTILES,
    Slice,
    box_rank_correlation,
    brain_pixels,
    encode_blanked,
    filler,
    grey_levels,
    top_pixels,
    tumour_slices,
)
from training.export import load_signature
from training.gradcam import GradCam, heat_on_image, stage_layers
from training.preprocessing import PreprocessConfig, decode, input_box, to_pixels

log = logging.getLogger(__name__)


def variants(stages: int) -> dict[str, tuple[int, ...]]:
    """Variant name -> indices into the stage list (the last stage is the coarsest)."""
    single = {f"stage {i + 1}": (i,) for i in range(stages)}
    averaged = {f"mean of last {k}": tuple(range(stages - k, stages)) for k in range(2, stages + 1)}
    return {**single, **averaged}


@dataclass(frozen=True)
class Probes:
    """Grad-CAM at every stage of the trained model and of a re-initialised copy."""

    trained: GradCam
    randomised: GradCam
    config: PreprocessConfig
    chosen: dict[str, tuple[int, ...]]

    def heatmaps(self, data: bytes) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        image = decode(tf.constant(data), self.config)
        box = input_box(image, self.config)
        pixels = to_pixels(image, box, self.config)[None]
        maps = []
        for grad_cam in (self.trained, self.randomised):
            cams, _ = grad_cam(pixels)
            maps.append({name: heat_on_image([cams[i] for i in indices], box,
                                             tf.shape(image)).numpy()
                         for name, indices in self.chosen.items()})
        return maps[0], maps[1]


def _check(
    item: Slice, probes: Probes, predict: Any, rng: np.random.Generator,
    fraction: float, draws: int, fill: str,
) -> dict[str, Any]:
    image = tf.io.decode_image(item.data, expand_animations=False).numpy()
    trained, randomised = probes.heatmaps(item.data)
    maps = {**trained, **{f"re-initialised, {k}": v for k, v in randomised.items()},
            "control: brightest pixels": grey_levels(image)}
    brain = np.flatnonzero(brain_pixels(image, probes.config))
    count = max(1, round(fraction * brain.size))
    randoms = [rng.choice(brain, count, replace=False) for _ in range(draws)]
    hottest = {name: top_pixels(heat, brain, count, rng) for name, heat in maps.items()}
    fills = filler(image, fill)
    images = [encode_blanked(image), *(encode_blanked(image, r, fills) for r in randoms),
              *(encode_blanked(image, h, fills) for h in hottest.values())]
    p = [float(v) for v in predict(images)]
    return {"path": item.path, "p_original": p[0], "p_random": p[1 : 1 + draws],
            "p_top": dict(zip(hottest, p[1 + draws :], strict=True)),
            "rank_correlation": {name: box_rank_correlation(trained[name], randomised[name],
                                                            image, probes.config)
                                 for name in trained}}


def summarise_variants(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per variant: share of slices where the top-heat blanking lowers P(tumor) more than the
    mean of the random draws, against each draw, and the quantiles of the difference."""
    p0 = np.array([r["p_original"] for r in rows])
    drops_random = p0[:, None] - np.array([r["p_random"] for r in rows])
    out: dict[str, Any] = {"slices": len(rows)}
    for name in rows[0]["p_top"]:
        drop_top = p0 - np.array([r["p_top"][name] for r in rows])
        difference = drop_top - drops_random.mean(axis=1)
        out[name] = {
            "share_vs_mean": float(np.mean(difference > 0)),
            "share_vs_each_draw": float(np.mean(drop_top[:, None] > drops_random)),
            "share_rising_after_top": float(np.mean(drop_top < 0)),
            "difference": {f"q{round(q * 100):02d}": float(np.quantile(difference, q))
                           for q in QUANTILES},
        }
        if name in rows[0]["rank_correlation"]:
            correlations = np.array([r["rank_correlation"][name] for r in rows])
            out[name]["mean_rank_correlation"] = float(np.nanmean(correlations))
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    card = read_card(args.version_dir)
    config = PreprocessConfig(**card.input.preprocessing)
    architecture = (card.architecture or {}).get("name", "compact")
    model = build_model(architecture, config, seed=0, augment=False)
    model.load_weights(str(args.weights))
    layers = [layer.name for layer in stage_layers(model)]
    log.info("stages: %s", layers)
    keras.utils.set_random_seed(args.seed + 1)
    fresh = build_model(architecture, config, seed=args.seed + 1, augment=False)
    fresh_layers = [layer.name for layer in stage_layers(fresh)]
    probes = Probes(GradCam(model, layers), GradCam(fresh, fresh_layers), config,
                    variants(len(layers)))
    predict = load_signature(args.version_dir)
    rng = np.random.default_rng(args.seed)
    slices = tumour_slices(args.data, args.manifest, args.split)
    rows = []
    for index, item in enumerate(slices, start=1):
        rows.append(_check(item, probes, predict, rng, args.fraction, args.draws, args.fill))
        if index % 50 == 0:
            log.info("%d/%d", index, len(slices))
    summary = {"split": args.split, "fill": args.fill, "draws": args.draws,
               "stages": layers, **summarise_variants(rows)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "slices": rows}, indent=1) + "\n")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m training.explain_variants",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version-dir", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--fill", choices=("black", "blur"), default="black")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    print(json.dumps(run(parser.parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m benchmarks.stand_in DIR`: export an untrained model of the default architecture
and input size to `DIR/bench-model/<version>/`, so the benchmark can run before a trained
model is shipped. Its speed is the shipped model's (same graph); its answers mean nothing."""

from __future__ import annotations

import argparse
from pathlib import Path


def export_stand_in(models_dir: Path, architecture: str) -> Path:
    import keras

    from model_contract import ModelCard
    from training.architectures import build_model, default_preprocess
    from training.export import export_model

    keras.utils.set_random_seed(0)
    preprocess = default_preprocess(architecture)
    model = build_model(architecture, preprocess, seed=0, augment=False)
    card = ModelCard(
        name="bench-model",
        version=0,  # export_model sets the next version
        classes=("healthy", "tumor"),
        positive_class="tumor",
        threshold=0.5,
        architecture={"name": architecture, "parameters": int(model.count_params())},
        intended_use="Benchmark stand-in: untrained, its answers mean nothing.",
    )
    return export_model(model, preprocess, card, models_dir, "bench-model")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stand_in")
    parser.add_argument("models_dir", type=Path, help="folder to export <name>/<version>/ into")
    parser.add_argument("--architecture", default="compact")
    args = parser.parse_args(argv)
    print(export_stand_in(args.models_dir, args.architecture))


if __name__ == "__main__":
    main()

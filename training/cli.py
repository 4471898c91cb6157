"""The command line: `python -m training train ...` and `python -m training evaluate ...`.

Everything a user can get wrong (folders, class layout, option values) is checked first, in a
fraction of a second, and reported as one sentence on stderr with exit status 2; TensorFlow is
imported only after that.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from model_contract import LayoutError, resolve_version_dir
from training.discovery import (
    DEFAULT_MIN_IMAGES_PER_CLASS,
    ClassLayout,
    DataError,
    resolve_classes,
)
from training.folds import DEFAULT_FOLDS
from training.grouping import DEFAULT_MAX_DISTANCE
from training.publishing import DEFAULT_MIN_ROC_AUC

if TYPE_CHECKING:
    from training.train_run import TrainOptions

# Kept here rather than read from architectures.py so that a typo is rejected before Keras is
# imported; tests/training/test_cli.py checks the two lists agree.
ARCHITECTURE_CHOICES = ("compact", "seed")
DEFAULT_MODEL_NAME = "brain-tumor-cnn"
EXIT_USAGE = 2
# The compact network halves its input four times; below 16 pixels nothing is left to pool.
MIN_IMAGE_SIZE = 16
# --quick: enough to see every step run, in about a minute on a laptop.
QUICK = {"folds": 2, "epochs": 2, "sample": 240, "bootstrap_resamples": 200}
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class UsageError(Exception):
    """A wrong command line; the message is one sentence for the user."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage dump: the message already names the option.
        self.exit(EXIT_USAGE, f"error: {message}.\n")


def _int_at_least(minimum: int, meaning: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not {meaning}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive whole number")
_non_negative_int = _int_at_least(0, "zero or more")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0.0:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train_arguments(commands.add_parser(
        "train", help="scan, group, split, train, evaluate on test, export and report",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    ))
    _add_evaluate_arguments(commands.add_parser(
        "evaluate", help="score an exported model on a labelled folder through its signature",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    ))
    return parser


def _add_train_arguments(train: argparse.ArgumentParser) -> None:
    train.add_argument("--data", type=Path, required=True,
                       help="folder with one sub-folder of images per class")
    train.add_argument("--out", type=Path, required=True,
                       help="models folder; the model goes to OUT/NAME/<next version>/")
    train.add_argument("--architecture", choices=ARCHITECTURE_CHOICES, default="compact",
                       help="network design")
    train.add_argument("--name", default=DEFAULT_MODEL_NAME, help="model name (folder name)")
    train.add_argument("--epochs", type=_positive_int, default=40,
                       help="epochs each fold model trains (cosine decay to 0)")
    train.add_argument("--batch-size", type=_positive_int, default=32, help="images per step")
    train.add_argument("--learning-rate", type=_positive_float, default=2e-3,
                       help="initial Adam learning rate")
    train.add_argument("--seed", type=_non_negative_int, default=0,
                       help="seed of the split, the weights and the augmentation")
    train.add_argument("--image-size", type=_positive_int, default=None,
                       help="override the architecture's input size (pixels a side)")
    train.add_argument("--width", type=_positive_int, default=None,
                       help="channels of the compact architecture's first stage (default 32)")
    train.add_argument("--positive-class", default=None,
                       help="class folder holding tumor images; if unset, recognised by name")
    train.add_argument("--run-dir", type=Path, default=None,
                       help="where the report, plots, manifest and checkpoints go; "
                            "if unset, runs/NAME-ARCHITECTURE-TIMESTAMP")
    train.add_argument("--min-images-per-class", type=_positive_int,
                       default=DEFAULT_MIN_IMAGES_PER_CLASS, help="fewer is an error")
    train.add_argument("--max-distance", type=_non_negative_int, default=DEFAULT_MAX_DISTANCE,
                       help="perceptual-hash bits (of 64) within which images are near-copies")
    train.add_argument("--drop-label-conflicts", action="store_true",
                       help="leave groups holding both labels out of every split")
    train.add_argument("--validation-fraction", type=_fraction, default=0.15,
                       help="share of images (by group) for validation")
    train.add_argument("--test-fraction", type=_fraction, default=0.15,
                       help="share of images (by group) for the test split")
    train.add_argument("--min-recall", type=_fraction, default=0.95,
                       help="validation recall the threshold must keep")
    train.add_argument("--gate-acceptance", type=_fraction, default=0.995,
                       help="share of held-out real slices (the first fold) the brain-MRI input "
                       "gate must let through; its threshold is chosen for it (default 0.995)")
    train.add_argument("--no-gate", action="store_true",
                       help="export without the brain-MRI input gate")
    train.add_argument("--ood", type=Path, default=None,
                       help="an OOD set (python -m training.ood_set) to measure the gate on; "
                       "its refusal rates go into the model card (never used to fit it)")
    train.add_argument("--bootstrap-resamples", type=_positive_int, default=1000,
                       help="resamples for the 95%% confidence intervals")
    _add_ensemble_arguments(train)


def _add_ensemble_arguments(train: argparse.ArgumentParser) -> None:
    train.add_argument("--folds", type=_int_at_least(2, "2 or more"), default=DEFAULT_FOLDS,
                       help="cross-validation folds on train + validation; one model per fold, "
                            "averaged in the exported model")
    train.add_argument("--flip-tta", action=argparse.BooleanOptionalAction, default=True,
                       help="average every member over the slice and its left-right mirror "
                            "(doubles the cost per image; raised out-of-fold ROC-AUC in every "
                            "fold measured)")
    train.add_argument("--min-roc-auc", type=_fraction, default=DEFAULT_MIN_ROC_AUC,
                       help="test ROC-AUC below this (or below the metadata-only baseline's) "
                            "is not published")
    train.add_argument("--publish-anyway", action="store_true",
                       help="publish even a model the checks (or --quick) would hold back")
    train.add_argument("--quick", action="store_true",
                       help=f"smoke run: {QUICK['folds']} folds of {QUICK['epochs']} epochs on "
                            f"{QUICK['sample']} random slices; not published by default")


def _add_evaluate_arguments(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("--model", type=Path, required=True,
                          help="exported version folder (or model folder: highest version)")
    evaluate.add_argument("--data", type=Path, required=True,
                          help="folder with one sub-folder of images per class")
    evaluate.add_argument("--report", type=Path, required=True,
                          help="folder for report.json, the plots and predictions.csv")
    evaluate.add_argument("--split-manifest", type=Path, default=None,
                          help="manifest.csv of a training run: score only its --split files")
    evaluate.add_argument("--split", choices=("train", "validation", "test"), default="test",
                          help="which split of the manifest to score")
    evaluate.add_argument("--reencode-png256", action="store_true",
                          help="re-encode every image to 256x256 greyscale PNG before scoring")
    evaluate.add_argument("--positive-class", default=None,
                          help="class folder holding tumor images; if unset, recognised by name")
    evaluate.add_argument("--min-images-per-class", type=_positive_int,
                          default=DEFAULT_MIN_IMAGES_PER_CLASS, help="fewer is an error")
    evaluate.add_argument("--ood", type=Path, default=None,
                          help="an OOD set (python -m training.ood_set): report the input "
                          "gate's refusal per kind of image beside its acceptance on the split")
    evaluate.add_argument("--bootstrap-resamples", type=_positive_int, default=1000,
                          help="resamples for the 95%% confidence intervals")


def _check_output_folder(path: Path, option: str) -> None:
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} '{path}' exists and is not a folder.")


def _check_input_folder(path: Path | None, option: str) -> None:
    if path is not None and not path.is_dir():
        raise UsageError(f"{option} '{path}' is not a folder.")


def _train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if not _NAME_PATTERN.match(args.name):
        raise UsageError(
            f"model name '{args.name}' must be letters, digits, '.', '_' or '-'."
        )
    if args.image_size is not None and args.image_size < MIN_IMAGE_SIZE:
        raise UsageError(f"--image-size must be at least {MIN_IMAGE_SIZE} pixels.")
    if args.width is not None and args.architecture != "compact":
        raise UsageError("--width applies to the compact architecture only.")
    if args.validation_fraction + args.test_fraction >= 0.9:
        raise UsageError("validation and test fractions must leave at least 10% for training.")
    layout = resolve_classes(args.data, args.positive_class, args.min_images_per_class)
    _check_output_folder(args.out, "--out")
    run_dir: Path = args.run_dir or Path("runs") / (
        f"{args.name}-{args.architecture}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    )
    _check_output_folder(run_dir, "--run-dir")
    _check_input_folder(args.ood, "--ood")
    if run_dir.is_dir() and (run_dir / "report.json").exists():
        raise UsageError(f"run folder '{run_dir}' already holds a run; choose another --run-dir.")

    _quiet_tensorflow()
    from training.train_run import run_training

    result = run_training(_train_options(args, layout, run_dir, argv))
    if result.refused is not None:
        print(f"error: {result.refused}; the report is {result.report_path}.", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _train_options(args: argparse.Namespace, layout: ClassLayout, run_dir: Path,
                   argv: Sequence[str]) -> TrainOptions:
    from training.fitting import TrainingConfig
    from training.publishing import PublishPolicy
    from training.splitting import SplitFractions
    from training.train_run import TrainOptions

    if args.quick:
        args.folds, args.epochs = QUICK["folds"], min(args.epochs, QUICK["epochs"])
        args.bootstrap_resamples = min(args.bootstrap_resamples, QUICK["bootstrap_resamples"])
    validation, test = args.validation_fraction, args.test_fraction
    return TrainOptions(
        layout=layout,
        out_dir=args.out,
        run_dir=run_dir,
        name=args.name,
        training=TrainingConfig(
            architecture=args.architecture,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            image_size=args.image_size,
            width=args.width,
        ),
        fractions=SplitFractions(1.0 - validation - test, validation, test),
        max_distance=args.max_distance,
        drop_label_conflicts=args.drop_label_conflicts,
        min_images_per_class=args.min_images_per_class,
        min_recall=args.min_recall,
        bootstrap_resamples=args.bootstrap_resamples,
        command=tuple(argv),
        gate_acceptance=None if args.no_gate else args.gate_acceptance,
        ood_dir=args.ood,
        folds=args.folds,
        flip_tta=args.flip_tta,
        publish=PublishPolicy(args.min_roc_auc, args.publish_anyway, args.quick),
        quick_sample=QUICK["sample"] if args.quick else None,
    )


def _evaluate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    try:
        version_dir = resolve_version_dir(args.model)
    except LayoutError as error:
        raise UsageError(str(error)) from None
    layout = resolve_classes(args.data, args.positive_class, args.min_images_per_class)
    if args.split_manifest is not None and not args.split_manifest.is_file():
        raise UsageError(f"split manifest '{args.split_manifest}' does not exist.")
    _check_output_folder(args.report, "--report")
    _check_input_folder(args.ood, "--ood")

    _quiet_tensorflow()
    from training.evaluate_run import EvaluateOptions, run_evaluation

    run_evaluation(
        EvaluateOptions(
            version_dir=version_dir,
            layout=layout,
            report_dir=args.report,
            manifest=args.split_manifest,
            split=args.split,
            reencode_png256=args.reencode_png256,
            min_images_per_class=1,
            bootstrap_resamples=args.bootstrap_resamples,
            command=tuple(argv),
            ood_dir=args.ood,
        )
    )
    return 0


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter (oneDNN, CPU features) buries the progress lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _log_to_stdout() -> None:
    """Progress lines from the training package go to stdout, one message per line."""
    logger = logging.getLogger("training")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    # TensorFlow's SavedModel writer can give the root logger a handler; one line is enough.
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    _log_to_stdout()
    try:
        if args.command == "train":
            return _train(args, ["python", "-m", "training", *arguments])
        return _evaluate(args, ["python", "-m", "training", *arguments])
    except (UsageError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE

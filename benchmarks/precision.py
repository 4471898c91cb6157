"""`python -m benchmarks.precision`: the model in bfloat16 against float32, in-process.

TensorFlow can rewrite a graph to bfloat16 for oneDNN (the grappler option
`auto_mixed_precision_onednn_bfloat16`), which CPUs with AMX or AVX512-BF16 run faster. This
measures what that would give the served graph (frozen, the service's TensorFlow threads) and
what it would cost: the raw model's batch-1 latency and batch-32 rate in each precision, one
process each, and how far the bfloat16 answers move from the float32 ones on the same images
(largest |dP(tumor)|, and how many images change label at each of the card's operating points).

The service never does this: its answers are the exported model's, whose operating points were
chosen on float32 outputs (docs/benchmarks.md, "Lower precision").

    python -m benchmarks.precision --images ../shared/datasets/brain-tumor-mri
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.raw_model import BatchRun, Threads, measure, write_images
from benchmarks.servers import REPO
from benchmarks.workload import load_folder, synthetic
from model_contract import ModelCard, find_version_dir, read_card


def thresholds(card: ModelCard) -> dict[str, float]:
    """Each operating point's threshold by name; the card's own threshold without them."""
    if card.operating_points is None:
        return {"threshold": card.threshold}
    return {name: point.threshold for name, point in card.operating_points.points.items()}


def label_changes(reference: np.ndarray, other: np.ndarray, threshold: float) -> int:
    return int(np.count_nonzero((reference >= threshold) != (other >= threshold)))


def run_at(runs: list[BatchRun], batch_size: int) -> BatchRun:
    return next(run for run in runs if run.batch_size == batch_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, help="folder of images (default: synthetic)")
    parser.add_argument("--model-dir", type=Path, default=REPO / "models")
    parser.add_argument("--max-images", type=int, default=512)
    parser.add_argument("--threads", default="1:2", help="TensorFlow threads, INTRA:INTER")
    parser.add_argument("--max-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    intra, inter = (int(n) for n in args.threads.split(":"))
    version_dir = find_version_dir(args.model_dir, None)
    card = read_card(version_dir)
    workload = (load_folder(args.images, args.max_images) if args.images
                else synthetic(args.max_images))
    results: dict[bool, tuple[list[BatchRun], np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-precision-") as work_dir:
        images_path = Path(work_dir) / "images.bin"
        write_images(workload.images, images_path)
        for bf16 in (False, True):
            runs, answers = measure(
                version_dir, images_path, Threads(intra, inter, frozen=True, bf16=bf16),
                (1, 32), len(workload.images), args.max_seconds, timeout=600.0,
            )
            results[bf16] = runs, np.asarray(answers)
    reference = results[False][1]
    print(f"{card.name} version {card.version}, {len(reference)} images, TensorFlow threads "
          f"{args.threads}, frozen graph\n")
    print("| precision | batch-1 p50 ms | batch-32 images/s | max abs dP(tumor) | "
          + " | ".join(f"labels changed at {name} ({limit:.3f})"
                       for name, limit in thresholds(card).items()) + " |")
    print("| --- " * (4 + len(thresholds(card))) + "|")
    for bf16, (runs, probabilities) in results.items():
        changes = [label_changes(reference, probabilities, limit)
                   for limit in thresholds(card).values()]
        print(f"| {'bfloat16' if bf16 else 'float32'} | {run_at(runs, 1).p50_ms:.2f} | "
              f"{run_at(runs, 32).images_per_s:.1f} | "
              f"{float(np.max(np.abs(probabilities - reference))):.4f} | "
              + " | ".join(f"{n} of {len(reference)}" for n in changes) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

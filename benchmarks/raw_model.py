"""The ceiling: the exported serving signature called directly (no HTTP, no queue) on the
workload's bytes, at batch size 1 and over a sweep of batch sizes.

TensorFlow's thread pools are fixed once per process, so each thread setting is measured in a
process of its own (`python -m benchmarks.raw_model`, started by `measure`); the best over all
settings is the ceiling, so tuning the service's threads cannot flatter its ratios.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.stats import percentiles_ms

REFERENCE_BATCH = 32


@dataclass(frozen=True)
class Threads:
    """How a raw process runs the model: TensorFlow's intra-op and inter-op thread counts (0
    lets TensorFlow choose), whether it calls the signature frozen, as the service does
    unless MRI_FREEZE_GRAPH=false (service/graph_freezing.py), and whether TensorFlow rewrites
    the graph to bfloat16 (oneDNN's automatic mixed precision; benchmarks/precision.py, never
    the service)."""

    intra_op: int = 0
    inter_op: int = 0
    frozen: bool = False
    bf16: bool = False

    def __str__(self) -> str:
        frozen = (", frozen" if self.frozen else "") + (", bfloat16" if self.bf16 else "")
        if (self.intra_op, self.inter_op) == (0, 0):
            return f"default{frozen}"
        return f"intra {self.intra_op or 'default'}, inter {self.inter_op or 'default'}{frozen}"


@dataclass(frozen=True)
class BatchRun:
    threads: Threads
    batch_size: int
    batches: int
    images: int
    seconds: float
    images_per_s: float
    p50_ms: float
    p95_ms: float
    cpu_ms_per_image: float  # the process's CPU time (TensorFlow's threads) per image

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "threads": asdict(self.threads)}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> BatchRun:
        return cls(**{**values, "threads": Threads(**values["threads"])})


def best_run(runs: Sequence[BatchRun]) -> BatchRun:
    return max(runs, key=lambda run: run.images_per_s)


def fastest_single(runs: Sequence[BatchRun]) -> BatchRun | None:
    """The lowest batch-1 latency over the thread settings measured."""
    singles = [run for run in runs if run.batch_size == 1]
    return min(singles, key=lambda run: run.p50_ms) if singles else None


# The parent's side: write the images once, run one process per thread setting.

def write_images(images: Sequence[bytes], path: Path) -> None:
    with path.open("wb") as out:
        for image in images:
            out.write(struct.pack("<Q", len(image)))
            out.write(image)


def read_images(path: Path) -> list[bytes]:
    data = path.read_bytes()
    images, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack_from("<Q", data, offset)
        images.append(data[offset + 8:offset + 8 + size])
        offset += 8 + size
    return images


def measure(
    version_dir: Path,
    images_path: Path,
    threads: Threads,
    batch_sizes: Sequence[int],
    max_images: int,
    max_seconds: float,
    timeout: float,
) -> tuple[list[BatchRun], list[float]]:
    """The sweep under one thread setting, and the model's P(tumor) for every image."""
    command = [
        sys.executable, "-m", "benchmarks.raw_model", "--version-dir", str(version_dir),
        "--images-file", str(images_path), "--intra-op", str(threads.intra_op),
        "--inter-op", str(threads.inter_op), *(["--frozen"] if threads.frozen else []),
        *(["--bf16"] if threads.bf16 else []),
        "--batch-sizes", ",".join(str(size) for size in batch_sizes),
        "--max-images", str(max_images), "--max-seconds", str(max_seconds),
    ]
    completed = subprocess.run(
        command, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"raw model measurement failed:\n{completed.stderr[-3000:]}")
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    runs = [BatchRun.from_json(run) for run in results["sweep"]]
    return runs, [float(p) for p in results["reference"]]


# The measuring process.

class SignatureCaller:
    """The signature as the service calls it: a string tensor in, a float array out."""

    def __init__(self, version_dir: Path, frozen: bool = False) -> None:
        import tensorflow as tf

        from model_contract import read_card
        from service.graph_freezing import FrozenSignature

        card = read_card(version_dir)
        self._tf = tf
        self._loaded = tf.saved_model.load(str(version_dir))  # keeps the variables alive
        signature = self._loaded.signatures[card.input.signature]
        self._function = FrozenSignature(signature) if frozen else signature
        self._input_key = card.input.input_key
        self._output_key = card.input.output_key

    def __call__(self, images: Sequence[bytes]) -> np.ndarray:
        batch = self._tf.constant(list(images), dtype=self._tf.string)
        outputs = self._function(**{self._input_key: batch})[self._output_key]
        return np.asarray(outputs.numpy(), dtype=np.float32).reshape(-1)


def measure_batch_size(
    predict: SignatureCaller,
    images: list[bytes],
    threads: Threads,
    batch_size: int,
    max_images: int,
    max_seconds: float,
) -> BatchRun:
    """Consecutive batches cycling through the images, after one untimed warm-up call."""
    def batch_at(index: int) -> list[bytes]:
        return [images[(index * batch_size + k) % len(images)] for k in range(batch_size)]

    predict(batch_at(0))
    latencies: list[float] = []
    cpu_started = time.process_time()
    started = time.perf_counter()
    deadline = started + max_seconds
    while (len(latencies) * batch_size < max_images and time.perf_counter() < deadline) \
            or len(latencies) < 3:
        batch = batch_at(len(latencies) + 1)
        call_started = time.perf_counter()
        predict(batch)
        latencies.append(time.perf_counter() - call_started)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    p50, p95 = percentiles_ms(latencies, (50, 95))
    count = len(latencies) * batch_size
    return BatchRun(threads, batch_size, len(latencies), count, seconds, count / seconds, p50,
                    p95, 1000.0 * cpu_seconds / count)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.raw_model")
    parser.add_argument("--version-dir", type=Path, required=True)
    parser.add_argument("--images-file", type=Path, required=True)
    parser.add_argument("--intra-op", type=int, default=0)
    parser.add_argument("--inter-op", type=int, default=0)
    parser.add_argument("--frozen", action="store_true", help="call the frozen signature")
    parser.add_argument("--bf16", action="store_true",
                        help="let TensorFlow rewrite the graph to bfloat16 (oneDNN)")
    parser.add_argument("--batch-sizes", default="1,2,4,8,16,32,64")
    parser.add_argument("--max-images", type=int, default=384)
    parser.add_argument("--max-seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    import tensorflow as tf

    threads = Threads(args.intra_op, args.inter_op, args.frozen, args.bf16)
    if threads.bf16:
        tf.config.optimizer.set_experimental_options(
            {"auto_mixed_precision_onednn_bfloat16": True})
    if threads.intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(threads.intra_op)
    if threads.inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(threads.inter_op)
    images = read_images(args.images_file)
    predict = SignatureCaller(args.version_dir, args.frozen)
    reference = np.concatenate([
        predict(images[start:start + REFERENCE_BATCH])
        for start in range(0, len(images), REFERENCE_BATCH)
    ])
    sweep = [
        measure_batch_size(predict, images, threads, size, max(args.max_images, 3 * size),
                           args.max_seconds)
        for size in (int(n) for n in args.batch_sizes.split(","))
    ]
    print(json.dumps({"sweep": [run.to_json() for run in sweep],
                      "reference": reference.tolist()}))


if __name__ == "__main__":
    main()

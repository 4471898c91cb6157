"""`python -m benchmarks.gate_latency`: what the brain-MRI input gate adds to /predict latency.

Two exports of the same trained network, one with the gate and one without (e.g. `python -m
training train --resume-fit RUN --no-gate`), each served by `python -m service` (the gated one
with MRI_INPUT_GATE=report, so that every image is answered and timed); /predict at
concurrency 1 on the same images, the two servers taking turns round after round so that a
change in background load hits both alike. Prints the median latency of each, the ratio, and
the raw signature's time per image (batch 1, the two models' calls interleaved).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.load import Scenario, request_bodies, run_scenario
from benchmarks.servers import ServerProcess, spawn_server, wait_until_ready
from benchmarks.workload import load_folder, synthetic
from model_contract import find_version_dir

READY_TIMEOUT_S = 120.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gate_latency",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gated", type=Path, required=True,
                        help="models folder (<name>/<version>/) of the model with the gate")
    parser.add_argument("--plain", type=Path, required=True,
                        help="models folder of the same network exported without the gate")
    parser.add_argument("--images", type=Path, default=None,
                        help="folder of images (default: 64 synthetic slices)")
    parser.add_argument("--requests", type=int, default=300, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server")
    return parser.parse_args(argv)


def raw_ms_per_image(
    plain_dir: Path, gated_dir: Path, images: Sequence[bytes], repeats: int = 5
) -> tuple[float, float]:
    """Each signature alone, one image per call, the two calls interleaved image by image
    (so that a change in background load hits both alike): median milliseconds per call."""
    import tensorflow as tf

    signatures = [tf.saved_model.load(str(find_version_dir(d, None))).signatures[
        "serving_default"] for d in (plain_dir, gated_dir)]
    batches = [tf.constant([image]) for image in images]
    times: list[list[float]] = [[], []]
    for signature in signatures:
        signature(image_bytes=batches[0])  # trace and warm up
    for _ in range(repeats):
        for batch in batches:
            for index, signature in enumerate(signatures):
                started = time.perf_counter()
                signature(image_bytes=batch)
                times[index].append(time.perf_counter() - started)
    return statistics.median(times[0]) * 1000.0, statistics.median(times[1]) * 1000.0


def serve(name: str, models_dir: Path, log_dir: Path) -> ServerProcess:
    env = {"MRI_MODEL_DIR": str(models_dir), "MRI_INPUT_GATE": "report",
           "MRI_ACCESS_LOG": "false", "MRI_LOG_LEVEL": "warning"}
    server = spawn_server(name, "service", ["service"], env, log_dir)
    wait_until_ready(server, READY_TIMEOUT_S)
    return server


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    workload = load_folder(args.images, 200) if args.images else synthetic(64)
    images = workload.images
    bodies = request_bodies(images, 1)
    scenario = Scenario("conc 1", "/predict", 1, 1, args.requests, 600.0)
    medians: dict[str, list[float]] = {"plain": [], "gated": []}
    load = [os.getloadavg()[0]]  # the machine's 1-minute load average, sampled every round
    with tempfile.TemporaryDirectory() as logs:
        servers = {"plain": serve("plain", args.plain, Path(logs)),
                   "gated": serve("gated", args.gated, Path(logs))}
        try:
            for _ in range(args.rounds):
                for name, server in servers.items():
                    result = asyncio.run(run_scenario(
                        server.url, scenario, bodies, [0.0] * len(images), lambda: None,
                        server.cpu_seconds, warmup_requests=20))
                    if result.errors:
                        raise SystemExit(f"{name}: {result.errors} failed requests "
                                         f"{result.statuses}")
                    medians[name].append(result.p50_ms)
                    load.append(os.getloadavg()[0])
        finally:
            for server in servers.values():
                server.stop()
    plain, gated = (statistics.median(medians[k]) for k in ("plain", "gated"))
    print(f"workload: {workload.source}; /predict at concurrency 1, {args.requests} "
          f"requests x {args.rounds} rounds per server")
    print(f"p50 per round (ms): plain {np.round(medians['plain'], 2).tolist()}, "
          f"gated {np.round(medians['gated'], 2).tolist()}")
    print(f"median p50: without gate {plain:.2f} ms, with gate {gated:.2f} ms, "
          f"added {100 * (gated / plain - 1):+.1f}%")
    raw_plain, raw_gated = raw_ms_per_image(args.plain, args.gated, images[:64])
    load.append(os.getloadavg()[0])
    print(f"raw signature, batch 1, median of interleaved calls: without gate {raw_plain:.2f} "
          f"ms, with gate {raw_gated:.2f} ms ({100 * (raw_gated / raw_plain - 1):+.1f}%)")
    print(f"1-minute load average during the run ({os.cpu_count()} CPUs): min {min(load):.1f}, "
          f"median {statistics.median(load):.1f}, max {max(load):.1f}")


if __name__ == "__main__":
    main()

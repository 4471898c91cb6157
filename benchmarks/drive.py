"""`python -m benchmarks.drive URL`: the benchmark's client against a server you started yourself
(for instance under a profiler, see benchmarks/loop_profile.py): waits until it is ready, then
keeps `--concurrency` requests in flight on one route and prints images/s and latencies.

    python -m benchmarks.drive http://127.0.0.1:8000 --images ../shared/datasets/brain-tumor-mri \\
        --concurrency 32 --requests 3000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import httpx

from benchmarks.load import Scenario, raw_bodies, request_bodies, run_scenario
from benchmarks.serving import run_async
from benchmarks.workload import load_folder, synthetic


def wait_ready(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} was not ready within {timeout:g} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drive",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--images", type=Path, help="folder of images (default: synthetic)")
    parser.add_argument("--max-images", type=int, default=512)
    parser.add_argument("--path", default="/predict", help="/predict or /predict/raw")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    workload = (load_folder(args.images, args.max_images) if args.images
                else synthetic(args.max_images))
    bodies = (raw_bodies(workload.images) if args.path.endswith("/raw")
              else request_bodies(workload.images, 1))
    wait_ready(args.url, 600.0)
    scenario = Scenario("drive", args.path, args.concurrency, 1, args.requests,
                        args.max_seconds)
    # No reference answers here: |dP| is not checked (compare and serving do that).
    result = run_async(run_scenario(
        args.url, scenario, bodies, [0.0] * len(bodies), lambda: None, lambda: 0.0,
        warmup_requests=2 * args.concurrency,
    ))
    print(f"{result.requests} answered, {result.errors} errors: {result.images_per_s:.1f} "
          f"images/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

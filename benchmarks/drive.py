"""`python -m benchmarks.drive URL`: the benchmark's client against a server you started yourself
(for instance under a profiler, see benchmarks/loop_profile.py): waits until it is ready, then
keeps `--concurrency` requests in flight on one route and prints images/s and latencies.

    python -m benchmarks.drive http://127.0.0.1:8000 --images ../shared/datasets/brain-tumor-mri \\
        --concurrency 32 --requests 3000

`--client httpx,wire --rounds 3` drives the same server with each client in turn, round after
round, and prints what each costs the client (its CPU per request) beside its latencies: the
load client shares the machine with the server it measures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx

from benchmarks.http_wire import WireConnection
from benchmarks.httpx_connection import HttpxConnection
from benchmarks.load import (
    Body,
    Connect,
    Scenario,
    ScenarioResult,
    raw_bodies,
    request_bodies,
    run_scenario,
)
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


CLIENTS: dict[str, Connect] = {"wire": WireConnection, "httpx": HttpxConnection}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drive",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--images", type=Path, help="folder of images (default: synthetic)")
    parser.add_argument("--max-images", type=int, default=512)
    parser.add_argument("--path", default="/predict", help="/predict or /predict/raw")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--client", default="wire",
                        help=f"comma-separated load clients ({', '.join(CLIENTS)})")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    args.clients = args.client.split(",")
    if unknown := set(args.clients) - set(CLIENTS):
        parser.error(f"unknown client(s): {', '.join(sorted(unknown))}")
    return args


def drive_once(url: str, args: argparse.Namespace, bodies: list[Body],
               connect: Connect) -> ScenarioResult:
    scenario = Scenario("drive", args.path, args.concurrency, 1, args.requests,
                        args.max_seconds)
    # No reference answers here: |dP| is not checked (compare and serving do that).
    return run_async(run_scenario(
        url, scenario, bodies, [0.0] * len(bodies), lambda: None, lambda: 0.0,
        warmup_requests=2 * args.concurrency, connect=connect,
    ))


def client_ms_per_request(result: ScenarioResult) -> float:
    return 1000.0 * result.client_cpu_share * result.seconds / max(1, result.requests)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workload = (load_folder(args.images, args.max_images) if args.images
                else synthetic(args.max_images))
    bodies = (raw_bodies(workload.images) if args.path.endswith("/raw")
              else request_bodies(workload.images, 1))
    wait_ready(args.url, 600.0)
    results: dict[str, list[ScenarioResult]] = {name: [] for name in args.clients}
    for round_number in range(1, args.rounds + 1):
        for name in args.clients:
            result = drive_once(args.url, args, bodies, CLIENTS[name])
            results[name].append(result)
            print(f"round {round_number} {name}: {result.requests} answered, {result.errors} "
                  f"errors: {result.images_per_s:.1f} images/s, p50 {result.p50_ms:.1f} ms, "
                  f"p99 {result.p99_ms:.1f} ms, client CPU "
                  f"{client_ms_per_request(result):.2f} ms per request")
    if len(args.clients) > 1 or args.rounds > 1:
        print("medians over the rounds:")
        for name, runs in results.items():
            print(f"  {name}: {statistics.median(r.images_per_s for r in runs):.1f} images/s, "
                  f"p50 {statistics.median(r.p50_ms for r in runs):.2f} ms, p99 "
                  f"{statistics.median(r.p99_ms for r in runs):.1f} ms, client CPU "
                  f"{statistics.median(client_ms_per_request(r) for r in runs):.2f} ms/request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m benchmarks.capacity`: what one replica, as the Kubernetes Deployment runs it, can
take. The service runs with the Deployment's environment (deploy/kubernetes/base/deployment.yaml)
pinned to one CPU, like a pod with `cpu: 1`; the client runs pinned to another CPU, like a caller
on another machine. For each concurrency: images/s, latency percentiles and errors, and the
replica's resident memory when ready and at its highest, which the Deployment's memory request
and limit are set from (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.failover import MiB, deployment_env, direct_answers
from benchmarks.load import Scenario, ScenarioResult, request_bodies, run_scenario
from benchmarks.servers import REPO, spawn_server, wait_until_ready
from benchmarks.workload import load_folder, synthetic

READY_TIMEOUT_S = 120.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=REPO / "models")
    parser.add_argument("--images", type=Path, help="folder of images (default: 64 synthetic)")
    parser.add_argument("--concurrency", default="1,4,16,64",
                        help="comma-separated concurrencies to measure")
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrency")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU the replica is pinned to")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU the client is pinned to")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    workload = load_folder(args.images, 256) if args.images else synthetic(64)
    bodies = request_bodies(workload.images, 1)
    os.sched_setaffinity(0, {args.client_cpu})
    server = spawn_server("replica", "service", ["service", "--model-dir", str(args.model_dir)],
                          {**deployment_env(), "MRI_ACCESS_LOG": "false"}, log_dir,
                          cpus=frozenset({args.server_cpu}))
    try:
        wait_until_ready(server, READY_TIMEOUT_S)
        rss_ready = server.rss_bytes() / MiB
        reference = direct_answers(server.url, bodies)
        peak = server.rss_bytes()
        results: list[ScenarioResult] = []
        for concurrency in (int(c) for c in args.concurrency.split(",")):

            def on_request_done() -> None:
                nonlocal peak
                server.requests_done += 1
                if server.requests_done % 100 == 0:
                    peak = max(peak, server.rss_bytes())

            results.append(asyncio.run(run_scenario(
                server.url,
                Scenario(f"conc {concurrency}", "/predict", concurrency, 1, args.requests,
                         args.max_seconds),
                bodies, reference, on_request_done, server.cpu_seconds,
                warmup_requests=2 * concurrency,
            )))
        rss_end = server.rss_bytes() / MiB
    finally:
        server.stop()
    return {
        "images": workload.source,
        "environment": deployment_env(),
        "start_to_ready_s": server.start_to_ready_s,
        "rss_ready_mib": rss_ready,
        "rss_peak_mib": max(peak / MiB, rss_end),
        "rss_end_mib": rss_end,
        "load_average_after": os.getloadavg(),
        "scenarios": [result.to_json() for result in results],
    }


def print_results(results: dict[str, Any]) -> None:
    print(f"One replica on one CPU ({results['images']}), environment {results['environment']}")
    print(f"start to ready {results['start_to_ready_s']:.1f} s; VmRSS ready "
          f"{results['rss_ready_mib']:.0f} MiB, highest {results['rss_peak_mib']:.0f} MiB; "
          f"load average after the run {results['load_average_after'][0]:.1f}\n")
    print("| concurrency | images/s | p50 ms | p95 ms | p99 ms | errors | server CPU ms/image |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for s in results["scenarios"]:
        print(f"| {s['concurrency']} | {s['images_per_s']:.1f} | {s['p50_ms']:.1f} | "
              f"{s['p95_ms']:.1f} | {s['p99_ms']:.1f} | {s['errors']} | "
              f"{s['server_cpu_ms_per_image']:.2f} |")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="capacity-") as log_dir:
        results = measure(args, Path(log_dir))
    print_results(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

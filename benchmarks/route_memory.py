"""`python -m benchmarks.route_memory`: the service's memory after each route's traffic.

One service at a time (so no two processes split shared pages between their PSS), started as
users start it, then driven pass after pass through every route in turn: `/predict` at
concurrency 32, `/explain` (JSON) and `/explain` with `Accept: image/png` at 8, and DICOM
uploads on `/predict` at 32. VmRSS and PSS are read when ready and after each route, so the
table shows which route makes the process grow and whether it levels off in the next pass.
`--variant NAME:KEY=VALUE,...` runs another service after it with those environment variables.

    python -m benchmarks.route_memory --images ../shared/datasets/brain-tumor-mri \\
        --variant arenas2:MALLOC_ARENA_MAX=2
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.load import Body, Scenario, request_bodies, run_scenario
from benchmarks.route_bodies import routes
from benchmarks.servers import REPO, ServerProcess, spawn_server, wait_until_ready
from benchmarks.serving import READY_TIMEOUT_S, log, parse_variant, run_async
from benchmarks.workload import load_folder, synthetic
from model_contract import find_version_dir, read_card

MIB = 1 << 20


@dataclass(frozen=True)
class Leg:
    """One route's traffic in a pass: `share` of --requests, at `concurrency`."""

    name: str
    path: str
    bodies: list[Body]
    concurrency: int
    share: float


@dataclass(frozen=True)
class Reading:
    server: str
    after: str
    requests: int
    errors: int
    rss_mib: float
    pss_mib: float


def legs(model_name: str, images: list[bytes]) -> list[Leg]:
    extra = routes(model_name, (32,))
    return [
        Leg("/predict", "/predict", request_bodies(images, 1), 32, 1.0),
        Leg("/explain", "/explain", extra["explain"].bodies(images), 8, 1 / 3),
        Leg("/explain png", "/explain", extra["explain-png"].bodies(images), 8, 1 / 6),
        Leg("DICOM", "/predict", extra["dicom"].bodies(images), 32, 1 / 2),
    ]


def drive(server: ServerProcess, plan: list[Leg], args: argparse.Namespace) -> list[Reading]:
    readings = [Reading(server.name, "ready", 0, 0, server.rss_bytes() / MIB,
                        server.pss_bytes() / MIB)]
    for number in range(1, args.passes + 1):
        for leg in plan:
            requests = max(1, round(args.requests * leg.share))
            result = run_async(run_scenario(
                server.url, Scenario(leg.name, leg.path, leg.concurrency, 1, requests,
                                     args.max_seconds),
                leg.bodies, [0.0] * len(leg.bodies), lambda: None, lambda: 0.0,
                read_answer=lambda response: [None],  # memory only: answers are not checked
            ))
            readings.append(Reading(server.name, f"pass {number}, {leg.name}", result.requests,
                                    result.errors, server.rss_bytes() / MIB,
                                    server.pss_bytes() / MIB))
            log(f"{server.name} pass {number} {leg.name}: {result.requests} answered, "
                f"{result.errors} errors, PSS {readings[-1].pss_mib:.0f} MiB")
    return readings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.route_memory",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, help="folder of images (default: synthetic)")
    parser.add_argument("--model-dir", type=Path, default=REPO / "models")
    parser.add_argument("--max-images", type=int, default=512)
    parser.add_argument("--requests", type=int, default=3000,
                        help="/predict requests per pass (/explain a third, its PNG a sixth, "
                        "DICOM half)")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...")
    args = parser.parse_args(argv)
    servers = [("service", {}), *(parse_variant(parser, text) for text in args.variant)]
    card = read_card(find_version_dir(args.model_dir, None))
    if card.explain is None:
        parser.error("the model has no explain signature: /explain cannot be driven")
    workload = (load_folder(args.images, args.max_images) if args.images
                else synthetic(args.max_images))
    plan = legs(card.name, workload.images)
    readings: list[Reading] = []
    with tempfile.TemporaryDirectory(prefix="bench-route-memory-") as log_dir:
        for name, env in servers:
            server = spawn_server(name, "service",
                                  ["service", "--model-dir", str(args.model_dir)],
                                  {"MRI_ACCESS_LOG": "false", **env}, Path(log_dir))
            try:
                wait_until_ready(server, READY_TIMEOUT_S)
                readings += drive(server, plan, args)
            finally:
                server.stop()
    print("| server | after | requests | errors | VmRSS MiB | PSS MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for reading in readings:
        print(f"| {reading.server} | {reading.after} | {reading.requests} | {reading.errors} | "
              f"{reading.rss_mib:,.0f} | {reading.pss_mib:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

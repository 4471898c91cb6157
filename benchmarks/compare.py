"""`python -m benchmarks.compare`: the service against the servers people would pick instead
(LitServe, BentoML, each in its own pinned environment, benchmarks/peer_envs.py) and the naive
baseline, side by side in one run: the same SavedModel, images, client and scenarios (issue 17).

1. The peers' environments are built first when missing (nothing else runs meanwhile).
2. Every server starts one at a time and is measured when ready: PSS of its whole process tree
   (/proc/<pid>/smaps_rollup), since LitServe and BentoML run their model in child processes.
3. The raw model's batch-1 latency (no HTTP) is measured for the overhead figure.
4. Rounds: each round runs every concurrency on every target in turn, so a change in
   background load hits all alike; the table gives each figure's median over the rounds.
5. PSS again at the end, after every request.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.compare_report import TargetResult, markdown, ratios
from benchmarks.load import (
    AnswerReader,
    Body,
    Scenario,
    ScenarioResult,
    json_answer,
    raw_bodies,
    run_scenario,
)
from benchmarks.peer_apps.model import ENV_PREFIX
from benchmarks.peer_envs import PEERS, default_cache_dir, ensure_env
from benchmarks.raw_model import Threads, fastest_single, measure, write_images
from benchmarks.route_bodies import ROUTE_NAMES, multipart_bodies, routes
from benchmarks.servers import (
    REPO,
    ServerProcess,
    main_thread_cpu_seconds,
    spawn_server,
    wait_until_ready,
)
from benchmarks.serving import READY_TIMEOUT_S, log, parse_variant, run_async, service_threads
from benchmarks.workload import Workload, load_folder, synthetic
from model_contract import ModelCard, find_version_dir, read_card

PEER_MAX_BATCH = 32
PEER_BATCH_WAIT_MS = 5.0  # LitServe's batch_timeout; the earlier run used 5 ms


@dataclass
class Target:
    """One row group of the table: a server process driven at one path with one encoding."""

    name: str
    server: ServerProcess
    path: str
    concurrencies: tuple[int, ...]
    bodies: str = "multipart"  # a key of bodies_for's answer
    kind: str = ""  # the server's kind, or "route" for the service's other routes (ungraded)
    read_answer: AnswerReader = json_answer
    results: dict[int, list[ScenarioResult]] = field(default_factory=dict)
    loop_cpu_ms: dict[int, list[float]] = field(default_factory=dict)  # services only

    @property
    def row_kind(self) -> str:
        return self.kind or self.server.kind


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    parser.add_argument("--images", type=Path, help="folder of images, searched recursively")
    parser.add_argument("--model-dir", type=Path, default=REPO / "models")
    parser.add_argument("--peers", default="litserve,bentoml",
                        help="comma-separated peers (litserve, bentoml) or 'none'")
    parser.add_argument("--peer-cache", type=Path, default=default_cache_dir(),
                        help="where the peers' virtual environments are built and kept")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                        help="also run the service with these environment variables")
    parser.add_argument("--service-env", default="MRI_ACCESS_LOG=false", metavar="KEY=VALUE,...",
                        help="environment of every service variant (default: access log off, "
                        "as the peers run here; '' for the service's own defaults)")
    parser.add_argument("--raw-route", default="/predict/raw", metavar="PATH",
                        help="also drive the service's raw-body route (image bytes as the "
                        "body); 'none' skips it")
    parser.add_argument("--routes", default=",".join(ROUTE_NAMES),
                        help="the service's other routes to drive too, comma-separated "
                        f"({', '.join(ROUTE_NAMES)}) or 'none'; rows only, no peer has them")
    parser.add_argument("--peer-threads", default="", metavar="INTRA:INTER",
                        help="TensorFlow threads of the peers' model (default: TensorFlow's "
                        "choice, as their documentation leaves it)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive server")
    parser.add_argument("--concurrency", default="1,32", help="comma-separated concurrencies")
    parser.add_argument("--requests", type=int, default=1000, help="requests per scenario")
    parser.add_argument("--rounds", type=int, default=2, help="repetitions of every scenario")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="time limit of one scenario on one target")
    parser.add_argument("--max-images", type=int, default=512)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny counts")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--log-dir", type=Path)
    args = parser.parse_args(argv)
    if args.images is None and not args.quick:
        parser.error("--images DIR is required (or --quick, which makes synthetic images)")
    if args.quick:
        args.requests, args.rounds, args.max_images, args.max_seconds = 12, 1, 8, 15.0
    args.concurrency = [int(n) for n in args.concurrency.split(",")]
    args.peers = [] if args.peers == "none" else list(filter(None, args.peers.split(",")))
    unknown = set(args.peers) - set(PEERS)
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; known: {', '.join(PEERS)}")
    args.routes = [] if args.routes == "none" else list(filter(None, args.routes.split(",")))
    if set(args.routes) - set(ROUTE_NAMES):
        parser.error(f"unknown routes {sorted(set(args.routes) - set(ROUTE_NAMES))}; known: "
                     f"{', '.join(ROUTE_NAMES)}")
    common = parse_variant(parser, f"common:{args.service_env}")[1]
    args.variants = [(name, {**common, **env}) for name, env in
                     [("service", {})] + [parse_variant(parser, text) for text in args.variant]]
    return args


def peer_environment(
    card: ModelCard, version_dir: Path, warmup_image: Path, threads: str = ""
) -> dict[str, str]:
    """What benchmarks/peer_apps/model.py reads: the model, the card's answer fields and, when
    given as INTRA:INTER, TensorFlow's thread counts."""
    intra, _, inter = threads.partition(":")
    values = {
        "TF_INTRA_OP_THREADS": intra or "0", "TF_INTER_OP_THREADS": inter or "0",
        "VERSION_DIR": str(version_dir.resolve()), "SIGNATURE": card.input.signature,
        "INPUT_KEY": card.input.input_key, "OUTPUT_KEY": card.input.output_key,
        "THRESHOLD": repr(card.threshold), "MODEL_NAME": card.name,
        "MODEL_VERSION": str(card.version), "POSITIVE": card.positive_class,
        "NEGATIVE": card.negative_class, "MAX_BATCH": str(PEER_MAX_BATCH),
        "BATCH_WAIT_MS": repr(PEER_BATCH_WAIT_MS), "WARMUP_IMAGE": str(warmup_image),
    }
    return {ENV_PREFIX + key: value for key, value in values.items()}


def plans(
    args: argparse.Namespace, peer_env: dict[str, str]
) -> list[tuple[str, str, list[str], dict[str, str], str, str]]:
    """(name, kind, module args, env, python, ready path) of every server, in start order."""
    model_dir = str(args.model_dir.resolve())
    found = [
        (name, "service", ["service", "--model-dir", model_dir], env, sys.executable,
         "/health/ready")
        for name, env in args.variants
    ]
    if not args.no_baseline:
        found.append(("naive", "naive", ["benchmarks.naive_server", "--model-dir", model_dir],
                      {}, sys.executable, "/health/ready"))
    for name in args.peers:
        peer = PEERS[name]
        python = str(ensure_env(peer, args.peer_cache))
        found.append((name, "peer", list(peer.module_args), peer_env, python, peer.ready_path))
    return found


def start(
    args: argparse.Namespace, stack: ExitStack, log_dir: Path, peer_env: dict[str, str],
    gc_at_ready: dict[str, dict[str, tuple[float, float]]],
) -> list[ServerProcess]:
    """Every server, one at a time, each measured once ready; a service's collector counters
    at that moment go into `gc_at_ready` (collections while loading are not serving pauses)."""
    servers = []
    for name, kind, module_args, env, python, ready_path in plans(args, peer_env):
        log(f"starting {name}")
        server = spawn_server(name, kind, module_args, env, log_dir, python=python,
                              ready_path=ready_path)
        stack.callback(server.stop)
        wait_until_ready(server, READY_TIMEOUT_S)
        time.sleep(2.0)  # let start-up threads settle before reading memory
        server.pss_ready = server.pss_bytes()
        if kind == "service":
            gc_at_ready[name] = gc_pauses(server.url)
        log(f"{name} ready after {server.start_to_ready_s:.2f} s, "
            f"PSS {server.pss_ready / 2**20:.0f} MiB")
        servers.append(server)
    return servers


def targets_of(
    args: argparse.Namespace, servers: list[ServerProcess], card: ModelCard
) -> list[Target]:
    """/predict on every server, then the service's raw-body route and its other routes."""
    every = tuple(args.concurrency)
    targets = [Target(server.name, server, "/predict", every) for server in servers]
    services = [server for server in servers if server.kind == "service"]
    if args.raw_route != "none":
        targets += [Target(f"{server.name} raw", server, args.raw_route, every, bodies="raw")
                    for server in services]
    for name, route in routes(card.name, every).items():
        if name not in args.routes:
            continue
        if route.needs_explain and card.explain is None:
            log(f"skipping {name}: model {card.name} {card.version} has no explain signature")
            continue
        targets += [Target(f"{server.name} {route.suffix}", server, route.path,
                           route.concurrencies, bodies=name, kind="route",
                           read_answer=route.read_answer) for server in services]
    return targets


def bodies_for(targets: list[Target], workload: Workload, model_name: str,
               ) -> dict[str, list[Body]]:
    """Every body set the targets send, made once before the clock starts."""
    makers: dict[str, Callable[[Sequence[bytes]], list[Body]]] = {
        "multipart": multipart_bodies, "raw": raw_bodies}
    makers |= {name: route.bodies for name, route in routes(model_name, ()).items()}
    return {name: makers[name](workload.images) for name in {t.bodies for t in targets}}


def run_rounds(
    args: argparse.Namespace, targets: list[Target], bodies: dict[str, list[Body]],
    reference: list[float],
) -> None:
    order = list(dict.fromkeys(c for target in targets for c in target.concurrencies))
    for round_number in range(1, args.rounds + 1):
        for concurrency in order:
            scenario = Scenario(f"conc {concurrency}", "", concurrency, 1, args.requests,
                                args.max_seconds)
            for target in targets:
                if concurrency not in target.concurrencies:
                    continue
                pid = target.server.process.pid
                loop_cpu = main_thread_cpu_seconds(pid)
                result = run_async(run_scenario(
                    target.server.url, _at(scenario, target.path), bodies[target.bodies],
                    reference, _no_count, target.server.tree_cpu_seconds,
                    warmup_requests=2 * concurrency, read_answer=target.read_answer,
                ))
                target.results.setdefault(concurrency, []).append(result)
                if target.server.kind == "service":  # warm-up requests included
                    served = result.requests + result.errors + 2 * concurrency
                    target.loop_cpu_ms.setdefault(concurrency, []).append(
                        1000.0 * (main_thread_cpu_seconds(pid) - loop_cpu) / served)
                log(f"round {round_number} {target.name} conc {concurrency}: "
                    f"{result.images_per_s:.1f} images/s, p50 {result.p50_ms:.1f} ms, "
                    f"p99 {result.p99_ms:.1f} ms, {result.errors} errors, "
                    f"max |dP| {result.max_abs_diff:.1g}")


def gc_pauses(url: str) -> dict[str, tuple[float, float]]:
    """The service's collections since it started, by generation: (count, seconds), from
    mri_gc_pause_seconds in /metrics."""
    families = text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text)
    found: dict[str, list[float]] = {}
    for family in families:
        if family.name != "mri_gc_pause_seconds":
            continue
        for sample in family.samples:
            generation = sample.labels.get("generation", "")
            if sample.name.endswith("_count"):
                found.setdefault(generation, [0.0, 0.0])[0] = sample.value
            elif sample.name.endswith("_sum"):
                found.setdefault(generation, [0.0, 0.0])[1] = sample.value
    return {generation: (values[0], values[1]) for generation, values in sorted(found.items())}


def since(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    zero = (0.0, 0.0)
    return {g: (n - before.get(g, zero)[0], t - before.get(g, zero)[1])
            for g, (n, t) in after.items()}


def _no_count() -> None:
    """Memory is read per server before and after the run, not per request count."""


def _at(scenario: Scenario, path: str) -> Scenario:
    return Scenario(scenario.name, path, scenario.concurrency, scenario.images_per_request,
                    scenario.requests, scenario.max_seconds)


def summarise(target: Target, concurrency: int) -> TargetResult:
    runs = target.results[concurrency]

    def median(name: str) -> float:
        return float(statistics.median(getattr(run, name) for run in runs))

    return TargetResult(
        target=target.name, kind=target.row_kind, concurrency=concurrency,
        rounds=len(runs), images_per_s=median("images_per_s"), p50_ms=median("p50_ms"),
        p99_ms=median("p99_ms"), server_cpu_ms_per_image=median("server_cpu_ms_per_image"),
        errors=sum(run.errors for run in runs),
        loop_cpu_ms_per_request=(float(statistics.median(target.loop_cpu_ms[concurrency]))
                                 if concurrency in target.loop_cpu_ms else float("nan")),
        pss_ready_mib=target.server.pss_ready / 2**20,
        pss_end_mib=target.server.pss_end / 2**20,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    version_dir = find_version_dir(args.model_dir, None)
    card = read_card(version_dir)
    workload = (load_folder(args.images, args.max_images) if args.images
                else synthetic(args.max_images))
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="bench-compare-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    warmup_image = log_dir / "warm-up-image"
    warmup_image.write_bytes(workload.images[0])
    load_before = os.getloadavg()
    started = time.perf_counter()
    with ExitStack() as stack:
        gc_at_ready: dict[str, dict[str, tuple[float, float]]] = {}
        peer_env = peer_environment(card, version_dir, warmup_image, args.peer_threads)
        servers = start(args, stack, log_dir, peer_env, gc_at_ready)
        images_path = log_dir / "images.bin"
        write_images(workload.images, images_path)
        raw = []
        settings = [Threads(), Threads(1, 1), *(service_threads(env) for _, env in args.variants)]
        for threads in dict.fromkeys(settings):
            sweep, reference = measure(version_dir, images_path, threads, [1],
                                       max_images=64 if args.quick else 384,
                                       max_seconds=2.0 if args.quick else 8.0, timeout=600.0)
            raw += sweep
        batch_one = fastest_single(raw)
        targets = targets_of(args, servers, card)
        run_rounds(args, targets, bodies_for(targets, workload, card.name), reference)
        for server in servers:
            server.pss_end = server.pss_bytes()
        pauses = {server.name: since(gc_at_ready[server.name], gc_pauses(server.url))
                  for server in servers if server.kind == "service"}
    rows = [summarise(target, c) for target in targets for c in target.concurrencies]
    found = ratios(rows, None if batch_one is None else batch_one.p50_ms)
    report = markdown(rows, found, batch_one, pauses)
    print(report)
    if args.markdown:
        args.markdown.write_text(report)
    if args.json:
        args.json.write_text(json.dumps(results_json(
            argv, args, workload, targets, rows, found, batch_one, load_before,
            time.perf_counter() - started) | {"gc_pauses": pauses}, indent=2) + "\n")
    log(f"done in {time.perf_counter() - started:.0f} s; logs in {log_dir}")
    return 0


def results_json(
    argv: list[str] | None, args: argparse.Namespace, workload: Workload,
    targets: list[Target], rows: list[TargetResult], found: list[dict[str, Any]],
    batch_one: Any, load_before: tuple[float, float, float], seconds: float,
) -> dict[str, Any]:
    return {
        "command": "python -m benchmarks.compare "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "workload": workload.source,
        "peers": {name: {"requirements": list(PEERS[name].requirements),
                         "batching": PEERS[name].batching} for name in args.peers},
        "raw_batch_one": None if batch_one is None else batch_one.to_json(),
        "summary": [row.to_json() for row in rows],
        "ratios": found,
        "rounds": {target.name: {str(c): [run.to_json() for run in runs]
                                 for c, runs in target.results.items()}
                   for target in targets},
        "seconds": seconds,
    }


if __name__ == "__main__":
    sys.exit(main())

"""`python -m benchmarks.serving`: the raw model, the service and a naive baseline measured side
by side in one run, on the same machine and the same image bytes (issue 6, docs/benchmarks.md).

1. The servers start one at a time (as users start them, each timed from process start to
   ready) and then stay up, idle, while the others run.
2. The raw model: the exported signature called directly, batch 1 and a sweep of batch sizes,
   in a process of its own per TensorFlow thread setting.
3. Each scenario (concurrency 1, 8, 32 on /predict; /predict/batch with 16 images; /explain
   at concurrency 1 and 8 on the services, when the model has the explain signature) runs on
   every server in turn before the next scenario starts, so a change in background load hits
   all of them alike.
4. A soak at concurrency 32 takes each service to its last memory checkpoint (10,000 requests
   by default); its resident memory is read when the count passes each checkpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Coroutine, Mapping
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.load import Scenario, ScenarioResult, request_bodies, run_scenario
from benchmarks.raw_model import BatchRun, Threads, best_run, measure, write_images
from benchmarks.report import Ratio, ServerResult, compute_ratios, markdown
from benchmarks.servers import (
    REPO,
    ServerProcess,
    service_setting,
    spawn_server,
    wait_until_ready,
)
from benchmarks.workload import Workload, load_folder, synthetic
from model_contract import LayoutError, ModelCard, find_version_dir, read_card

T = TypeVar("T")
LATENCY_SCENARIO = "conc 1"
THROUGHPUT_SCENARIO = "conc 32"
BATCH_SCENARIO = "batch 16"
BATCH_IMAGES = 16
BATCH_CONCURRENCY = 2
# /explain beside /predict at the same concurrency: its p50 over /predict's (target <= 3).
EXPLAIN_CONCURRENCY = (1, 8)
READY_TIMEOUT_S = 120.0
# Batching changes the order of floating-point sums a little, never more than this.
MAX_ABS_DIFF = 1e-4


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serving",
        description="Measure the raw model, the service and a naive baseline side by side.",
    )
    parser.add_argument("--images", type=Path, help="folder of images, searched recursively "
                        "(optional with --quick: synthetic slices are made instead)")
    parser.add_argument("--model-dir", type=Path, default=REPO / "models",
                        help="folder holding <name>/<version>/ (default: the repository's "
                        "models/)")
    parser.add_argument("--requests", type=int, help="requests per scenario (default 1000; "
                        "/predict/batch sends an eighth of it; --quick: 12)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: a handful of requests, tiny counts")
    parser.add_argument("--json", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--markdown", type=Path, help="write the markdown tables to this file")
    parser.add_argument("--max-images", type=int,
                        help="images taken from --images, spread evenly (default 512)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                        help="also run the service with these environment variables "
                        "(repeatable), e.g. 'wait0:MRI_MAX_WAIT_MS=0'; PYTHONPATH=DIR runs a "
                        "patched copy of service/ from DIR")
    parser.add_argument("--baselines", default="async",
                        help="naive baselines to run: async, threaded, both, or none")
    parser.add_argument("--max-seconds", type=float,
                        help="time limit of one scenario on one server (default 60)")
    parser.add_argument("--rss-checkpoints", default=None, metavar="FIRST,LAST",
                        help="request counts at which to read the service's RSS "
                        "(default 1000,10000)")
    parser.add_argument("--soak-max-seconds", type=float, default=None,
                        help="time limit of the soak to the last checkpoint (default 300)")
    parser.add_argument("--batch-sizes", default=None,
                        help="raw model batch sizes (default 1,2,4,8,16,32,64)")
    parser.add_argument("--raw-threads", default=None, metavar="INTRA:INTER,...",
                        help="more TensorFlow thread settings to measure the raw model with; "
                        "TensorFlow's defaults and each variant's are always measured "
                        "(default 1:1; --quick: none)")
    parser.add_argument("--log-dir", type=Path, help="where server logs go (default: a new "
                        "temporary folder)")
    args = parser.parse_args(argv)
    quick = args.quick
    if args.images is None and not quick:
        parser.error("--images DIR is required (or --quick, which makes synthetic images)")
    args.requests = args.requests or (12 if quick else 1000)
    args.max_images = args.max_images or (8 if quick else 512)
    if args.raw_threads is None:
        args.raw_threads = "" if quick else "1:1"
    args.max_seconds = args.max_seconds or (15.0 if quick else 60.0)
    args.soak_max_seconds = args.soak_max_seconds or (20.0 if quick else 300.0)
    checkpoints = [int(n) for n in (args.rss_checkpoints or ("30,80" if quick else
                                                              "1000,10000")).split(",")]
    if len(checkpoints) != 2 or not 0 < checkpoints[0] < checkpoints[1]:
        parser.error("--rss-checkpoints takes two increasing counts, e.g. 1000,10000")
    args.rss_checkpoints = (checkpoints[0], checkpoints[1])
    args.batch_sizes = [int(n) for n in (args.batch_sizes or ("1,2,4" if quick else
                                                               "1,2,4,8,16,32,64")).split(",")]
    baselines = {"both": ["async", "threaded"], "none": []}.get(args.baselines,
                                                              args.baselines.split(","))
    if not set(baselines) <= {"async", "threaded"}:
        parser.error("--baselines takes async, threaded, both or none")
    args.baselines = baselines
    args.variants = [("service", {})] + [parse_variant(parser, text) for text in args.variant]
    return args


def parse_variant(parser: argparse.ArgumentParser, text: str) -> tuple[str, dict[str, str]]:
    name, _, settings = text.partition(":")
    env: dict[str, str] = {}
    for item in filter(None, settings.split(",")):
        key, equals, value = item.partition("=")
        if not equals or not key.isidentifier() or not key.isupper():
            parser.error(f"--variant {text!r}: settings are KEY=VALUE, comma-separated")
        env[key] = value
    if not name or name == "service":
        parser.error(f"--variant {text!r}: give it a name other than 'service'")
    return name, env


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """uvloop when installed (it comes with uvicorn[standard]): less client CPU per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def warn_if_answers_differ(server: str, result: ScenarioResult) -> None:
    if result.max_abs_diff > MAX_ABS_DIFF:
        log(f"WARNING: {server} answered up to {result.max_abs_diff:.2g} away from the raw "
            "model's P(tumor): is it serving the same model?")


def explain_scenarios(args: argparse.Namespace, card: ModelCard) -> list[Scenario]:
    """/explain at each EXPLAIN_CONCURRENCY, when the model has the explain signature."""
    if card.explain is None:
        return []
    return [
        Scenario(f"explain conc {concurrency}", "/explain", concurrency, 1, args.requests,
                 args.max_seconds)
        for concurrency in EXPLAIN_CONCURRENCY
    ]


def explain_pairs(plan: list[Scenario]) -> list[tuple[str, str]]:
    """(/explain scenario, /predict scenario at the same concurrency) pairs of the plan."""
    return [(f"explain conc {c}", f"conc {c}") for c in EXPLAIN_CONCURRENCY
            if any(scenario.name == f"explain conc {c}" for scenario in plan)]


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    single = [
        Scenario(f"conc {concurrency}", "/predict", concurrency, 1, args.requests,
                 args.max_seconds)
        for concurrency in (1, 8, 32)
    ]
    batch = Scenario(BATCH_SCENARIO, "/predict/batch", BATCH_CONCURRENCY, BATCH_IMAGES,
                     max(2, args.requests // 8), args.max_seconds)
    return [*single, batch]


def start_servers(
    args: argparse.Namespace, stack: ExitStack, log_dir: Path
) -> list[tuple[ServerProcess, int]]:
    """Every server, each with its RSS once ready. One at a time, so each start-to-ready is
    measured alone; a --quick run starts them all at once to save time."""
    model_dir = str(args.model_dir.resolve())
    plans = [
        (name, "service", ["service", "--model-dir", model_dir], env)
        for name, env in args.variants
    ] + [
        (f"naive-{handler}", "naive",
         ["benchmarks.naive_server", "--model-dir", model_dir, "--handler", handler], {})
        for handler in args.baselines
    ]
    servers: list[ServerProcess] = []
    for name, kind, module_args, env in plans:
        log(f"starting {name}")
        server = spawn_server(name, kind, module_args, env, log_dir)
        stack.callback(server.stop)
        servers.append(server)
        if not args.quick:
            wait_until_ready(server, READY_TIMEOUT_S)
            log(f"{server.name} ready after {server.start_to_ready_s:.2f} s")
    if args.quick:
        for server in servers:
            wait_until_ready(server, READY_TIMEOUT_S)
            log(f"{server.name} ready after {server.start_to_ready_s:.2f} s")
    return [(server, server.rss_bytes()) for server in servers]


def service_threads(env: Mapping[str, str]) -> Threads:
    """The TensorFlow threads (and frozen graph or not) of a service started with this
    environment: what it sets, else the service's own defaults (service/config.py) for this
    machine's CPUs."""

    return Threads(service_setting(env, "tf_intra_op_threads", int),
                   service_setting(env, "tf_inter_op_threads", int),
                   service_setting(env, "freeze_graph", bool))


def thread_settings(args: argparse.Namespace) -> list[Threads]:
    """TensorFlow's defaults, each service variant's settings, and --raw-threads."""
    settings = [Threads()] + [service_threads(env) for _, env in args.variants]
    for item in filter(None, args.raw_threads.split(",")):
        intra, _, inter = item.partition(":")
        settings.append(Threads(int(intra), int(inter or 0)))
    return list(dict.fromkeys(settings))


def measure_raw(
    args: argparse.Namespace, version_dir: Path, workload: Workload, work_dir: Path
) -> tuple[list[BatchRun], list[float]]:
    images_path = work_dir / "images.bin"
    write_images(workload.images, images_path)
    runs: list[BatchRun] = []
    reference: list[float] = []
    for threads in thread_settings(args):
        log(f"raw model, TensorFlow threads {threads}: batch size sweep")
        sweep, probabilities = measure(
            version_dir, images_path, threads, args.batch_sizes,
            max_images=64 if args.quick else 384, max_seconds=2.0 if args.quick else 8.0,
            timeout=600.0,
        )
        reference = reference or probabilities
        for run in sweep:
            log(f"  batch {run.batch_size}: {run.images_per_s:.1f} images/s, "
                f"p50 {run.p50_ms:.2f} ms per batch")
        runs += sweep
    images_path.unlink()
    return runs, reference


def results_json(
    argv: list[str] | None,
    card: ModelCard,
    version_dir: Path,
    workload: Workload,
    checkpoints: tuple[int, int],
    raw: list[BatchRun],
    servers: list[ServerResult],
    ratios: list[Ratio],
    load_before: tuple[float, float, float],
    seconds: float,
    log_dir: Path,
) -> dict[str, Any]:
    return {
        "command": "python -m benchmarks.serving "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "model": {
            "version_dir": str(version_dir),
            "name": card.name,
            "version": card.version,
            "preprocessing": card.input.preprocessing,
            "architecture": card.architecture,
        },
        "workload": {
            "source": workload.source,
            "images": len(workload.images),
            "converted_to_png": workload.converted,
            "mean_bytes": workload.mean_bytes,
        },
        "rss_checkpoints": list(checkpoints),
        "raw": {"sweep": [run.to_json() for run in raw], "best": best_run(raw).to_json()},
        "servers": [server.to_json() for server in servers],
        "ratios": [ratio.to_json() for ratio in ratios],
        "seconds": seconds,
        "server_logs": str(log_dir),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        version_dir = find_version_dir(args.model_dir, None)
    except LayoutError as error:
        sys.exit(f"{error}.\nPass --model-dir, or export a stand-in model of the shipped "
                 "architecture: python -m benchmarks.stand_in /tmp/bench-models")
    card = read_card(version_dir)
    workload: Workload = (load_folder(args.images, args.max_images) if args.images
                          else synthetic(args.max_images))
    log(f"model {version_dir}; workload: {workload.source}")
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="bench-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    run_started = time.perf_counter()
    checkpoints: tuple[int, int] = args.rss_checkpoints
    trace_every = max(1, checkpoints[1] // 10)
    plan = scenarios(args) + explain_scenarios(args, card)

    with ExitStack() as stack:
        started = start_servers(args, stack, log_dir)

        raw, reference = measure_raw(args, version_dir, workload, log_dir)

        results: dict[str, list[ScenarioResult]] = {server.name: [] for server, _ in started}
        bodies = {size: request_bodies(workload.images, size) for size in (1, BATCH_IMAGES)}
        for scenario in plan:
            for server, _ in started:
                if scenario.path == "/explain" and server.kind != "service":
                    continue  # the naive baselines have no /explain
                result = run_async(run_scenario(
                    server.url, scenario, bodies[scenario.images_per_request], reference,
                    partial(server.count_request, checkpoints, trace_every), server.cpu_seconds,
                    warmup_requests=2 * scenario.concurrency,
                ))
                results[server.name].append(result)
                warn_if_answers_differ(server.name, result)
                log(f"{server.name} {scenario.name}: {result.images_per_s:.1f} images/s, "
                    f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
                    f"{result.errors} errors")

        for server, _ in started:
            remaining = checkpoints[1] - server.requests_done
            if server.kind != "service" or remaining <= 0:
                continue
            log(f"{server.name}: soak at concurrency 32 to {checkpoints[1]:,} requests")
            soak = Scenario("soak conc 32", "/predict", 32, 1, remaining, args.soak_max_seconds)
            result = run_async(run_scenario(
                server.url, soak, bodies[1], reference,
                partial(server.count_request, checkpoints, trace_every), server.cpu_seconds,
            ))
            results[server.name].append(result)
            log(f"{server.name} soak: {result.images_per_s:.1f} images/s over "
                f"{result.requests:,} requests")

        servers = [
            ServerResult(
                name=server.name, kind=server.kind, env=server.env,
                start_to_ready_s=server.start_to_ready_s, rss_ready_bytes=rss_ready,
                rss_end_bytes=server.rss_bytes(), rss_checkpoints=dict(server.rss_checkpoints),
                rss_trace=list(server.rss_trace),
                requests_served=server.requests_done, scenarios=results[server.name],
            )
            for server, rss_ready in started
        ]

    ratios = compute_ratios(
        raw, servers, checkpoints, THROUGHPUT_SCENARIO, LATENCY_SCENARIO,
        [scenario.name for scenario in plan if scenario.path != "/explain"],
        explain_pairs(plan),
    )
    report = markdown(raw, servers, ratios)
    print(report)
    if args.markdown:
        args.markdown.write_text(report)
    if args.json:
        args.json.write_text(json.dumps(results_json(
            argv, card, version_dir, workload, checkpoints, raw, servers, ratios, load_before,
            time.perf_counter() - run_started, log_dir,
        ), indent=2) + "\n")
    log(f"done in {time.perf_counter() - run_started:.0f} s; server logs in {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

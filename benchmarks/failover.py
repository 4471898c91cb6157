"""`python -m benchmarks.failover`: replicas behind nginx survive losing one (issue 15).

Three `python -m service` processes (the shipped model, the Deployment's environment from
deploy/kubernetes/base/deployment.yaml) run behind Debian's nginx with the shipped
deploy/nginx/brain-mri-classifier.conf. A bounded load runs through nginx; at a set request one
replica is killed with SIGKILL (no drain, connections reset mid-request) and started again on
the same port. The load goes on until the restarted replica is ready and answering through nginx
again. Every client answer is checked (status 200, P(tumor) equal to a direct answer for the same
image), and nginx's access log says which replica answered each request and which attempts it
passed on to the next one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.load import (
    Body,
    Scenario,
    ScenarioResult,
    probabilities_in,
    request_bodies,
    run_scenario,
)
from benchmarks.nginx import AccessRecord, Nginx, read_access_log, start_nginx
from benchmarks.servers import REPO, ServerProcess, rss_bytes, spawn_server, wait_until_ready
from benchmarks.workload import synthetic

DEPLOYMENT = REPO / "deploy" / "kubernetes" / "base" / "deployment.yaml"
# Given as flags by spawn_server (host, port) and by this benchmark (model folder).
SET_HERE = frozenset({"MRI_HOST", "MRI_PORT", "MRI_MODEL_DIR"})
# Generous: three TensorFlow processes starting at once on a busy 2-core machine took over 2
# minutes here (5 s each on a quiet one). A bound, not an expectation.
READY_TIMEOUT_S = 300.0
MiB = 1024 * 1024


def deployment_env() -> dict[str, str]:
    """The MRI_* settings the Kubernetes Deployment gives its container, so the replicas here
    run as the pods would."""
    manifest = yaml.safe_load(DEPLOYMENT.read_text())
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    return {
        entry["name"]: str(entry["value"])
        for entry in container.get("env", [])
        if "value" in entry and entry["name"] not in SET_HERE
    }


@dataclass
class Fleet:
    """The replicas, by index; a restarted replica keeps its index, port and log file."""

    replicas: list[ServerProcess]
    model_dir: Path
    log_dir: Path
    env: dict[str, str]

    @property
    def ports(self) -> list[int]:
        return [port_of(replica) for replica in self.replicas]

    def kill(self, index: int) -> None:
        process = self.replicas[index].process
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def start(self, index: int, port: int | None = None) -> ServerProcess:
        replica = spawn_server(f"replica-{index}", "service", ["service", "--model-dir",
                               str(self.model_dir)], self.env, self.log_dir, port=port)
        if index < len(self.replicas):
            self.replicas[index] = replica
        else:
            self.replicas.append(replica)
        return replica

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()


def port_of(replica: ServerProcess) -> int:
    return int(replica.url.rsplit(":", 1)[1])


def start_fleet(count: int, model_dir: Path, log_dir: Path) -> Fleet:
    """Start `count` replicas at once (as a rollout would) and wait until all are ready."""
    fleet = Fleet([], model_dir, log_dir, deployment_env())
    try:
        for index in range(count):
            fleet.start(index)
        for replica in fleet.replicas:
            wait_until_ready(replica, READY_TIMEOUT_S)
    except BaseException:
        fleet.stop()
        raise
    return fleet


def direct_answers(url: str, bodies: list[Body]) -> list[float]:
    """P(tumor) per image index from one replica, called directly (no nginx, one at a time)."""
    reference: dict[int, float] = {}
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for body in bodies:
            response = client.post("/predict", content=body.content,
                                   headers={"content-type": body.content_type})
            response.raise_for_status()
            for index, probability in zip(body.image_indices,
                                          probabilities_in(response.json()), strict=True):
                assert probability is not None
                reference[index] = probability
    return [reference[index] for index in range(len(reference))]


@dataclass
class KillPlan:
    """Kill replica `index` when the load has finished `at_request` requests, restart it."""

    index: int
    at_request: int
    done: int = 0
    port: int = 0
    killed_at: float = float("nan")  # epoch seconds, like nginx's $msec
    ready_at: float = float("nan")
    restarted: ServerProcess | None = None
    restarted_event: asyncio.Event = field(default_factory=asyncio.Event)

    def on_request_done(self, fleet: Fleet) -> None:
        self.done += 1
        if self.done == self.at_request:
            self.port = fleet.ports[self.index]
            self.killed_at = time.time()
            fleet.kill(self.index)
            self.restarted = fleet.start(self.index, port=self.port)
            self.restarted_event.set()


async def watch_readiness(plan: KillPlan, timeout: float) -> None:
    """Poll the restarted replica's /health/ready directly, every 50 ms, until it says 200."""
    await plan.restarted_event.wait()
    assert plan.restarted is not None
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                response = await client.get(f"{plan.restarted.url}/health/ready")
                if response.status_code == 200:
                    plan.ready_at = time.time()
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"the restarted replica was not ready in {timeout:.0f} s")


@dataclass(frozen=True)
class FailoverResult:
    during: ScenarioResult  # the load during which the replica was killed
    after: list[ScenarioResult]  # rounds after it was ready, until nginx sent it traffic again
    killed_port: int
    killed_at: float
    ready_at: float
    records: list[AccessRecord]
    rss_mib: dict[str, float]  # replica name -> VmRSS after the run
    load_average: tuple[float, float]  # the machine's 1-minute load average, before and after
    nginx_problems: list[str]  # nginx's error log at level error or worse

    @property
    def failed_requests(self) -> int:
        return self.during.errors + sum(result.errors for result in self.after)

    @property
    def answered(self) -> int:
        return self.during.requests + sum(result.requests for result in self.after)

    @property
    def max_abs_diff(self) -> float:
        return max([self.during.max_abs_diff, *(r.max_abs_diff for r in self.after)])

    def attempts_on_killed(self, since: float, until: float) -> Counter[str]:
        """Statuses of every attempt nginx made on the killed replica's address in a window."""
        address = f"127.0.0.1:{self.killed_port}"
        return Counter(
            status
            for record in self.records if since <= record.at < until
            for upstream, status in zip(record.upstreams, record.upstream_statuses, strict=True)
            if upstream == address
        )

    def summary(self) -> dict[str, Any]:
        since_kill = self.attempts_on_killed(self.killed_at, float("inf"))
        after_ready = self.attempts_on_killed(self.ready_at, float("inf"))
        return {
            "client_requests": self.answered + self.failed_requests,
            "failed_client_requests": self.failed_requests,
            "nginx_non_200": sum(record.status != 200 for record in self.records),
            "retried_requests": sum(record.retried for record in self.records),
            "killed_to_ready_s": self.ready_at - self.killed_at,
            "attempts_on_killed_replica_since_kill": dict(since_kill),
            "answers_from_restarted_replica_after_ready": after_ready.get("200", 0),
            "max_abs_diff": self.max_abs_diff,
            "during": self.during.to_json(),
            "after": [result.to_json() for result in self.after],
            "rss_mib": self.rss_mib,
            "load_average_before_after": self.load_average,
            "nginx_problems": self.nginx_problems,
        }


async def drive(
    nginx: Nginx, fleet: Fleet, plan: KillPlan, bodies: list[Body], reference: list[float],
    args: argparse.Namespace,
) -> tuple[ScenarioResult, list[ScenarioResult]]:
    watcher = asyncio.create_task(watch_readiness(plan, READY_TIMEOUT_S))
    during = await run_scenario(
        nginx.url,
        Scenario("kill one replica", "/predict", args.concurrency, 1, args.requests,
                 args.max_seconds),
        bodies, reference, lambda: plan.on_request_done(fleet), lambda: 0.0,
    )
    await watcher
    # nginx takes a failed replica back after fail_timeout (3 s) by sending it one request;
    # keep the load on, in bounded rounds, until the restarted replica has answered some.
    after: list[ScenarioResult] = []
    address = f"127.0.0.1:{plan.port}"
    for round_number in range(args.max_rounds):
        after.append(await run_scenario(
            nginx.url,
            Scenario(f"after ready {round_number + 1}", "/predict", args.concurrency, 1,
                     args.after_requests, args.max_seconds),
            bodies, reference, lambda: None, lambda: 0.0,
        ))
        rejoined = sum(
            record.upstreams[-1] == address and record.status == 200
            for record in read_access_log(nginx.access_log) if record.at >= plan.ready_at
        )
        if rejoined >= args.min_rejoined:
            break
    return during, after


def run_failover(args: argparse.Namespace, workdir: Path) -> FailoverResult:
    load_before = os.getloadavg()[0]
    bodies = request_bodies(synthetic(args.images).images, 1)
    fleet = start_fleet(args.replicas, args.model_dir, workdir)
    try:
        reference = direct_answers(fleet.replicas[0].url, bodies)
        nginx = start_nginx(fleet.ports, workdir / "nginx")
        try:
            plan = KillPlan(index=args.kill_replica, at_request=args.kill_at)
            during, after = asyncio.run(drive(nginx, fleet, plan, bodies, reference, args))
        finally:
            nginx.stop()
        rss = {f"replica-{i}": rss_bytes(r.process.pid) / MiB
               for i, r in enumerate(fleet.replicas)}
    finally:
        fleet.stop()
    return FailoverResult(during, after, plan.port, plan.killed_at, plan.ready_at,
                          read_access_log(nginx.access_log), rss,
                          (load_before, os.getloadavg()[0]), nginx.problems())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.failover", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=REPO / "models",
                        help="folder holding <name>/<version>/ (default: the shipped model)")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3000,
                        help="requests in the run during which one replica is killed")
    parser.add_argument("--kill-at", type=int, default=600,
                        help="kill the replica when this many requests have finished")
    parser.add_argument("--kill-replica", type=int, default=1, help="index of the replica")
    parser.add_argument("--after-requests", type=int, default=500,
                        help="requests per round once the killed replica is ready again")
    parser.add_argument("--min-rejoined", type=int, default=20, help="rounds go on until the "
                        "restarted replica has answered this many requests through nginx")
    parser.add_argument("--max-rounds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--images", type=int, default=32, help="distinct synthetic images")
    parser.add_argument("--max-seconds", type=float, default=120.0,
                        help="time limit of each request loop")
    parser.add_argument("--quick", action="store_true",
                        help="CI size: 200 requests, kill at 60, rounds of 50, concurrency 8")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--log-dir", type=Path, help="keep the replicas' and nginx's logs here")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.kill_at, args.after_requests = 200, 60, 50
        args.min_rejoined, args.concurrency = 5, 8
    return args


def print_summary(summary: dict[str, Any]) -> None:
    during = summary["during"]
    print("| measure | value |\n| --- | --- |")
    rows = [
        ("client requests through nginx", summary["client_requests"]),
        ("failed client requests", summary["failed_client_requests"]),
        ("requests nginx passed on to another replica", summary["retried_requests"]),
        ("attempts on the killed replica's address after the kill (status: count; 502 = "
         "connection refused or reset, 503 = not ready yet)",
         summary["attempts_on_killed_replica_since_kill"]),
        ("SIGKILL to restarted replica ready (s)", f"{summary['killed_to_ready_s']:.1f}"),
        ("answers from the restarted replica once ready",
         summary["answers_from_restarted_replica_after_ready"]),
        ("largest |P(tumor) - direct answer|", f"{summary['max_abs_diff']:.2g}"),
        ("images/s during the run with the kill", f"{during['images_per_s']:.1f}"),
        ("p50 / p95 / p99 ms during that run",
         f"{during['p50_ms']:.1f} / {during['p95_ms']:.1f} / {during['p99_ms']:.1f}"),
        ("replicas' VmRSS after the run (MiB)",
         ", ".join(f"{v:.0f}" for v in summary["rss_mib"].values())),
        ("machine's 1-minute load average before / after (2 cores)",
         " / ".join(f"{v:.1f}" for v in summary["load_average_before_after"])),
    ]
    for label, value in rows:
        print(f"| {label} | {value} |")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="failover-") as scratch:
        workdir = args.log_dir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        result = run_failover(args, workdir)
    summary = result.summary()
    print_summary(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if summary["failed_client_requests"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

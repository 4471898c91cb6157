"""Turning the measurements into the ratios issue 6 asks for, a markdown report and JSON."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.load import ScenarioResult
from benchmarks.raw_model import BatchRun, Threads, best_run, fastest_single

MiB = 1024 * 1024
# The targets of issue 6; None: reported without a target.
THROUGHPUT_RATIO_TARGET = 0.85
OVERHEAD_TARGET_MS = 5.0
RSS_GROWTH_TARGET_PERCENT = 5.0
START_TO_READY_TARGET_S = 8.0
EXPLAIN_P50_RATIO_TARGET = 3.0  # issue 11: /explain at most 3x /predict's p50


@dataclass(frozen=True)
class ServerResult:
    name: str
    kind: str  # "service" or "naive"
    env: dict[str, str]
    start_to_ready_s: float
    rss_ready_bytes: int
    rss_end_bytes: int
    rss_checkpoints: dict[int, int]  # requests served -> VmRSS bytes
    rss_trace: list[tuple[int, int]]  # (requests served, VmRSS bytes) at regular intervals
    requests_served: int
    scenarios: list[ScenarioResult]

    def scenario(self, name: str) -> ScenarioResult | None:
        return next((result for result in self.scenarios if result.scenario == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "env": self.env,
            "start_to_ready_s": self.start_to_ready_s,
            "rss_mib": {
                "ready": self.rss_ready_bytes / MiB,
                **{f"after_{count}": rss / MiB for count, rss in self.rss_checkpoints.items()},
                "end": self.rss_end_bytes / MiB,
            },
            "rss_trace_mib": [[count, rss / MiB] for count, rss in self.rss_trace],
            "requests_served": self.requests_served,
            "scenarios": [result.to_json() for result in self.scenarios],
        }


@dataclass(frozen=True)
class Ratio:
    key: str
    server: str
    label: str
    value: float | None
    target: str | None = None
    met: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def describe(run: BatchRun) -> str:
    if run.threads == Threads():
        return f"batch {run.batch_size}"
    return f"batch {run.batch_size}, TF {run.threads}"


def _divide(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom == 0 or math.isnan(top) or math.isnan(bottom):
        return None
    return top / bottom


def _at_least(value: float | None, target: float) -> bool | None:
    return None if value is None else value >= target


def _at_most(value: float | None, target: float) -> bool | None:
    return None if value is None else value <= target


def compute_ratios(
    raw: Sequence[BatchRun],
    servers: Sequence[ServerResult],
    checkpoints: tuple[int, int],
    throughput_scenario: str,
    latency_scenario: str,
    compared_scenarios: Sequence[str],
    explain_pairs: Sequence[tuple[str, str]] = (),
) -> list[Ratio]:
    best = best_run(raw)
    batch_one = fastest_single(raw)
    services = [server for server in servers if server.kind == "service"]
    baselines = [server for server in servers if server.kind == "naive"]
    first, last = checkpoints
    ratios: list[Ratio] = []

    def images_per_s(server: ServerResult, scenario: str) -> float | None:
        result = server.scenario(scenario)
        return None if result is None or result.requests == 0 else result.images_per_s

    for server in [*services, *baselines]:
        value = _divide(images_per_s(server, throughput_scenario), best.images_per_s)
        is_service = server.kind == "service"
        ratios.append(Ratio(
            "throughput_over_raw_best", server.name,
            f"{throughput_scenario} images/s ÷ raw best ({describe(best)})", value,
            f">= {THROUGHPUT_RATIO_TARGET}" if is_service else None,
            _at_least(value, THROUGHPUT_RATIO_TARGET) if is_service else None,
        ))
    for server in services:
        for baseline in baselines:
            for scenario in compared_scenarios:
                ratios.append(Ratio(
                    f"over_{baseline.name}:{scenario}", server.name,
                    f"{scenario} images/s ÷ {baseline.name}'s",
                    _divide(images_per_s(server, scenario), images_per_s(baseline, scenario)),
                ))
        latency = server.scenario(latency_scenario)
        overhead = None
        if latency is not None and batch_one is not None and not math.isnan(latency.p50_ms):
            overhead = latency.p50_ms - batch_one.p50_ms
        ratios.append(Ratio(
            "overhead_ms", server.name,
            f"{latency_scenario} p50 − raw batch-1 p50 (ms; {describe(batch_one)})"
            if batch_one is not None else f"{latency_scenario} p50 − raw batch-1 p50 (ms)",
            overhead,
            f"<= {OVERHEAD_TARGET_MS:g}", _at_most(overhead, OVERHEAD_TARGET_MS),
        ))
        rss_first = server.rss_checkpoints.get(first)
        rss_last = server.rss_checkpoints.get(last)
        ratios.append(Ratio(
            "rss_first_mib", server.name, f"RSS after {first:,} requests (MiB)",
            None if rss_first is None else rss_first / MiB,
        ))
        ratios.append(Ratio(
            "rss_last_mib", server.name, f"RSS after {last:,} requests (MiB)",
            None if rss_last is None else rss_last / MiB,
        ))
        growth = _divide(
            None if rss_first is None or rss_last is None else float(rss_last - rss_first),
            None if rss_first is None else float(rss_first),
        )
        growth_percent = None if growth is None else 100.0 * growth
        ratios.append(Ratio(
            "rss_growth_percent", server.name, f"RSS growth {first:,} → {last:,} requests (%)",
            growth_percent, f"<= {RSS_GROWTH_TARGET_PERCENT:g}",
            _at_most(growth_percent, RSS_GROWTH_TARGET_PERCENT),
        ))
    for server in services:
        ratios += explain_ratios(server, explain_pairs)
    for server in [*services, *baselines]:
        is_service = server.kind == "service"
        ratios.append(Ratio(
            "start_to_ready_s", server.name, "process start to ready (s)", server.start_to_ready_s,
            f"<= {START_TO_READY_TARGET_S:g}" if is_service else None,
            _at_most(server.start_to_ready_s, START_TO_READY_TARGET_S) if is_service else None,
        ))
    return ratios


def explain_ratios(server: ServerResult, pairs: Sequence[tuple[str, str]]) -> list[Ratio]:
    """/explain's p50 over /predict's at the same concurrency, one ratio per pair."""
    ratios = []
    for explain, predict in pairs:
        explained, predicted = server.scenario(explain), server.scenario(predict)
        value = _divide(None if explained is None else explained.p50_ms,
                        None if predicted is None else predicted.p50_ms)
        ratios.append(Ratio(
            f"explain_p50_over_predict:{predict}", server.name,
            f"{explain} p50 ÷ {predict} (/predict) p50", value,
            f"<= {EXPLAIN_P50_RATIO_TARGET:g}", _at_most(value, EXPLAIN_P50_RATIO_TARGET),
        ))
    return ratios


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def markdown(
    raw: Sequence[BatchRun], servers: Sequence[ServerResult], ratios: Sequence[Ratio]
) -> str:
    best = best_run(raw)
    lines = ["### Raw model (serving signature in-process)", ""]
    lines += _table(
        ["TF threads", "batch size", "images/s", "p50 ms per batch", "p95 ms per batch",
         "CPU ms per image", "images"],
        [[str(run.threads), f"{run.batch_size}" + (" (best)" if run is best else ""),
          _number(run.images_per_s),
          _number(run.p50_ms, 2), _number(run.p95_ms, 2), _number(run.cpu_ms_per_image, 2),
          f"{run.images}"] for run in raw],
    )
    lines += ["", "### Over HTTP (loopback)", ""]
    rows = []
    for server in servers:
        for result in server.scenarios:
            rows.append([
                server.name, result.scenario, _number(result.images_per_s),
                _number(result.p50_ms, 2), _number(result.p95_ms, 2), _number(result.p99_ms, 2),
                f"{result.requests}", f"{result.errors}",
                _number(result.server_cpu_ms_per_image, 2), _number(result.client_cpu_share, 2),
            ])
    lines += _table(
        ["server", "scenario", "images/s", "p50 ms", "p95 ms", "p99 ms", "requests", "errors",
         "server CPU ms per image", "client CPU (cores)"],
        rows,
    )
    traced = [server for server in servers if server.kind == "service" and server.rss_trace]
    if traced:
        counts = sorted({count for server in traced for count, _ in server.rss_trace})
        lines += ["", "### Service memory (VmRSS, MiB) by requests served", ""]
        lines += _table(
            ["server", "ready", *(f"{count:,}" for count in counts)],
            [[server.name, _number(server.rss_ready_bytes / MiB, 0),
              *(_number(dict(server.rss_trace)[count] / MiB, 0)
                if count in dict(server.rss_trace) else "" for count in counts)]
             for server in traced],
        )
    lines += ["", "### Ratios and targets", ""]
    lines += _table(
        ["server", "measure", "value", "target", "met"],
        [[ratio.server, ratio.label,
          _number(ratio.value, 1 if ratio.key.endswith(("_ms", "_mib", "_percent")) else 2),
          ratio.target or "", {True: "yes", False: "**no**", None: ""}[ratio.met]]
         for ratio in ratios],
    )
    return "\n".join(lines) + "\n"

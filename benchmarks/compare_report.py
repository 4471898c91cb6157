"""The peer comparison's table and its targets (issue 17), from the medians over the rounds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.raw_model import BatchRun

THROUGHPUT_OVER_BEST_PEER = 1.1
P99_CEILING_MS = 150.0
OVERHEAD_TARGET_MS = 3.0
THROUGHPUT_CONCURRENCIES = (1, 32)
TAIL_CONCURRENCY = 32


@dataclass(frozen=True)
class TargetResult:
    target: str
    kind: str  # service, naive or peer
    concurrency: int
    rounds: int
    images_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms_per_image: float
    errors: int
    loop_cpu_ms_per_request: float  # the service's event-loop thread; NaN for other servers
    pss_ready_mib: float
    pss_end_mib: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _row(rows: Sequence[TargetResult], target: str, concurrency: int) -> TargetResult | None:
    return next((r for r in rows if r.target == target and r.concurrency == concurrency), None)


def _ratio(
    key: str, target: str, label: str, value: float | None, goal: str = "",
    met: bool | None = None,
) -> dict[str, Any]:
    return {"key": key, "target": target, "label": label, "value": value, "goal": goal,
            "met": met}


def ratios(
    rows: Sequence[TargetResult], raw_batch_one_p50_ms: float | None
) -> list[dict[str, Any]]:
    """Every service target against the best peer per measure (highest images/s, lowest p99,
    lowest PSS), against the naive server, and its overhead over the raw batch-1 call."""
    peers = [r for r in rows if r.kind == "peer"]
    services = sorted({r.target for r in rows if r.kind == "service"})
    found: list[dict[str, Any]] = []
    for name in services:
        for concurrency in sorted({r.concurrency for r in rows}):
            mine = _row(rows, name, concurrency)
            rivals = [r for r in peers if r.concurrency == concurrency]
            if mine is None or not rivals:
                continue
            best = max(rivals, key=lambda r: r.images_per_s)
            value = mine.images_per_s / best.images_per_s
            graded = concurrency in THROUGHPUT_CONCURRENCIES
            found.append(_ratio(
                f"throughput_over_best_peer:{concurrency}", name,
                f"conc {concurrency} images/s ÷ best peer's ({best.target})", value,
                f">= {THROUGHPUT_OVER_BEST_PEER}" if graded else "",
                value >= THROUGHPUT_OVER_BEST_PEER if graded else None))
        tail = _row(rows, name, TAIL_CONCURRENCY)
        rivals = [r for r in peers if r.concurrency == TAIL_CONCURRENCY]
        if tail is not None and rivals:
            best = min(rivals, key=lambda r: r.p99_ms)
            found.append(_ratio(
                "p99_ms", name, f"conc {TAIL_CONCURRENCY} p99 ms (best peer: {best.target} "
                f"{best.p99_ms:.1f})", tail.p99_ms,
                f"<= {best.p99_ms:.1f} and <= {P99_CEILING_MS:g}",
                tail.p99_ms <= min(best.p99_ms, P99_CEILING_MS)))
        single = _row(rows, name, 1)
        if single is not None and raw_batch_one_p50_ms is not None:
            overhead = single.p50_ms - raw_batch_one_p50_ms
            found.append(_ratio("overhead_ms", name, "conc 1 p50 − raw batch-1 p50 (ms)",
                                overhead, f"<= {OVERHEAD_TARGET_MS:g}",
                                overhead <= OVERHEAD_TARGET_MS))
        own = next(r for r in rows if r.target == name)
        if peers:
            lightest = min(peers, key=lambda r: r.pss_ready_mib)
            found.append(_ratio(
                "pss_ready_mib", name, f"PSS when ready, MiB (best peer: {lightest.target} "
                f"{lightest.pss_ready_mib:.0f})", own.pss_ready_mib,
                f"<= {lightest.pss_ready_mib:.0f}", own.pss_ready_mib <= lightest.pss_ready_mib))
    return found


def _number(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def markdown(
    rows: Sequence[TargetResult], found: Sequence[dict[str, Any]], batch_one: BatchRun | None,
    pauses: dict[str, dict[str, tuple[float, float]]],
) -> str:
    lines = ["### Servers side by side (medians over the rounds)", "",
             "| server | concurrency | images/s | p50 ms | p99 ms | server CPU ms per image "
             "| event-loop CPU ms per request | errors | PSS ready MiB | PSS end MiB |",
             "|" + " --- |" * 10]
    for r in rows:
        lines.append(
            f"| {r.target} | {r.concurrency} | {_number(r.images_per_s)} | {_number(r.p50_ms, 2)}"
            f" | {_number(r.p99_ms, 2)} | {_number(r.server_cpu_ms_per_image, 2)}"
            f" | {_number(r.loop_cpu_ms_per_request, 2)} | {r.errors}"
            f" | {_number(r.pss_ready_mib, 0)} | {_number(r.pss_end_mib, 0)} |")
    if batch_one is not None:
        lines += ["", f"Raw model, batch 1, in-process ({batch_one.threads} TF threads): "
                  f"p50 {batch_one.p50_ms:.2f} ms."]
    if pauses:
        lines += ["", "### The service's garbage collections from ready to the end of the run "
                  "(mri_gc_pause_seconds: count / total time)", "",
                  "| server | generation 0 | generation 1 | generation 2 |",
                  "| --- | --- | --- | --- |"]
        for name, by_generation in pauses.items():
            cells = [f"{by_generation[g][0]:,.0f} / {1000 * by_generation[g][1]:,.0f} ms"
                     if g in by_generation else "n/a" for g in ("0", "1", "2")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "### Against the best peer", "", "| server | measure | value | target | met |",
              "| --- | --- | --- | --- | --- |"]
    for ratio in found:
        digits = 1 if ratio["key"] in ("p99_ms", "overhead_ms", "pss_ready_mib") else 2
        met = {True: "yes", False: "**no**", None: ""}[ratio["met"]]
        lines.append(f"| {ratio['target']} | {ratio['label']} | "
                     f"{_number(ratio['value'], digits)} | {ratio['goal']} | {met} |")
    return "\n".join(lines) + "\n"

"""The peer comparison (`python -m benchmarks.compare`): its grading against the best peer, and a
smoke run without peers (building their environments needs PyPI). Nothing here times anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import service.config
from benchmarks import serving
from benchmarks.compare import peer_environment
from benchmarks.compare_report import TargetResult, markdown, ratios
from benchmarks.peer_apps.model import ENV_PREFIX, SETTINGS
from benchmarks.peer_envs import PEERS, env_dir, requirements, tensorflow_requirement
from benchmarks.raw_model import Threads
from model_contract import find_version_dir, read_card

REPO = Path(__file__).resolve().parents[2]


def row(target: str, kind: str, concurrency: int, images_per_s: float, p99_ms: float,
        pss_mib: float, p50_ms: float = 10.0) -> TargetResult:
    return TargetResult(target, kind, concurrency, 2, images_per_s, p50_ms, p99_ms, 3.0, 0,
                        0.5, pss_mib, pss_mib)


def test_each_measure_is_graded_against_its_own_best_peer() -> None:
    rows = [
        row("service", "service", 1, 120.0, 20.0, 400.0, p50_ms=6.0),
        row("service", "service", 32, 200.0, 140.0, 400.0),
        row("fast-peer", "peer", 1, 100.0, 30.0, 700.0),
        row("fast-peer", "peer", 32, 190.0, 300.0, 700.0),
        row("lean-peer", "peer", 1, 50.0, 25.0, 380.0),
        row("lean-peer", "peer", 32, 90.0, 120.0, 380.0),
    ]
    found = {(r["target"], r["key"]): r for r in ratios(rows, raw_batch_one_p50_ms=3.5)}
    single = found[("service", "throughput_over_best_peer:1")]
    assert single["value"] == pytest.approx(1.2) and single["met"] is True
    crowded = found[("service", "throughput_over_best_peer:32")]
    assert crowded["value"] == pytest.approx(200 / 190) and crowded["met"] is False
    tail = found[("service", "p99_ms")]  # the lowest peer p99 (120) is the bar, not 150
    assert "lean-peer" in tail["label"] and tail["met"] is False
    assert found[("service", "overhead_ms")]["value"] == pytest.approx(2.5)
    assert found[("service", "overhead_ms")]["met"] is True
    memory = found[("service", "pss_ready_mib")]
    assert "lean-peer" in memory["label"] and memory["met"] is False
    table = markdown(rows, list(found.values()), None, {"service": {"2": (3.0, 0.6)}})
    assert "| service | 32 | 200.0 |" in table and "3 / 600 ms" in table


def test_peer_environments_are_pinned_and_keyed_by_their_requirements(tmp_path: Path) -> None:
    for peer in PEERS.values():
        wanted = requirements(peer)
        assert all("==" in requirement for requirement in peer.requirements)
        assert tensorflow_requirement() in wanted  # the same runtime as the project's
        assert env_dir(peer, tmp_path).parent == tmp_path
    assert env_dir(PEERS["litserve"], tmp_path) != env_dir(PEERS["bentoml"], tmp_path)


@pytest.mark.e2e
def test_quick_comparison_without_peers(exported_model_dir: Path, tmp_path: Path) -> None:
    results_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.compare", "--quick", "--peers", "none",
         "--model-dir", str(exported_model_dir), "--json", str(results_path),
         "--log-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = json.loads(results_path.read_text())
    rows = {(r["target"], r["concurrency"]): r for r in results["summary"]}
    graded = {(t, c) for t in ("service", "naive", "service raw") for c in (1, 32)}
    # The service's other routes (deliverable 5): rows of their own, at their concurrencies.
    extra = {(f"service {route}", c) for route in ("dicom", "oip") for c in (1, 32)}
    extra |= {(f"service {route}", c) for route in ("explain", "explain png") for c in (1, 8)}
    assert set(rows) == graded | extra
    for result in rows.values():
        assert result["errors"] == 0 and result["images_per_s"] > 0, result
        assert result["pss_ready_mib"] > 0
        assert (result["loop_cpu_ms_per_request"] > 0) == (result["target"] != "naive")
        kind = {"naive": "naive"}.get(result["target"], "service")
        assert result["kind"] == ("route" if (result["target"], result["concurrency"]) in extra
                                  else kind), result
    for target, runs in results["rounds"].items():
        if target != "service explain png":  # a PNG overlay carries no probability
            # The same model as the raw measurement; DICOM within a grey level's rounding.
            assert all(run["max_abs_diff"] < 0.05 for run in runs["1"]), target
    # Only /predict is graded against the peers; the other routes are rows, not rivals.
    assert {r["key"] for r in results["ratios"]} == {"overhead_ms"}
    assert {r["target"] for r in results["ratios"]} == {"service", "service raw"}
    assert set(results["gc_pauses"]["service"]) == {"0", "1", "2"}


def test_the_raw_model_is_also_timed_as_each_service_runs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The overhead figure subtracts the fastest raw call: the service's own thread setting
    # must be among those timed, or a better setting in the service would flatter it.
    monkeypatch.setattr(service.config, "available_cpus", lambda: 2)
    # The same for the frozen graph the service serves unless told otherwise.
    assert serving.service_threads({}) == Threads(1, 2, frozen=True)
    assert serving.service_threads({"MRI_TF_INTER_OP_THREADS": "3"}) == Threads(1, 3, True)
    assert serving.service_threads({"MRI_TF_INTRA_OP_THREADS": "0", "MRI_FREEZE_GRAPH": "false",
                                    "MRI_TF_INTER_OP_THREADS": "0"}) == Threads()
    assert serving.service_threads({"MRI_FREEZE_GRAPH": "0"}) == Threads(1, 2, frozen=False)
    monkeypatch.setattr(service.config, "available_cpus", lambda: 1)
    assert serving.service_threads({}) == Threads(1, 1, frozen=True)


def test_peer_threads_reach_the_peer_model_and_default_to_tensorflows_choice(
    tmp_path: Path,
) -> None:
    card = read_card(find_version_dir(REPO / "models", None))
    image = tmp_path / "warm-up"
    default = peer_environment(card, tmp_path, image)
    assert (default[ENV_PREFIX + "TF_INTRA_OP_THREADS"],
            default[ENV_PREFIX + "TF_INTER_OP_THREADS"]) == ("0", "0")
    tuned = peer_environment(card, tmp_path, image, "1:2")
    assert (tuned[ENV_PREFIX + "TF_INTRA_OP_THREADS"],
            tuned[ENV_PREFIX + "TF_INTER_OP_THREADS"]) == ("1", "2")
    assert set(SETTINGS) == {key.removeprefix(ENV_PREFIX) for key in tuned}


def test_only_a_service_that_freezes_its_graph_is_waited_for_after_ready(tmp_path: Path) -> None:
    # Memory "when ready" and the rows are read once the frozen graph serves, not mid-swap.
    from unittest.mock import Mock

    from benchmarks.servers import ServerProcess, freezes_graph

    def server(kind: str, env: dict[str, str]) -> ServerProcess:
        return ServerProcess("s", kind, env, "http://127.0.0.1:1", Mock(), tmp_path / "log", 0.0)

    assert freezes_graph(server("service", {}))
    assert freezes_graph(server("service", {"MRI_FREEZE_GRAPH": "true"}))
    assert not freezes_graph(server("service", {"MRI_FREEZE_GRAPH": "false"}))
    assert not freezes_graph(server("service", {"MRI_FREEZE_GRAPH": "0"}))
    assert not freezes_graph(server("peer", {}))

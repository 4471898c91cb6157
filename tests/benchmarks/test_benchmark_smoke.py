"""Smoke run of the serving benchmark (`--quick`): a handful of requests against real server
processes. It checks the benchmark still works, not how fast anything is."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from service.cpus import available_cpus, default_tf_threads

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = ["conc 1", "conc 8", "conc 32", "batch 16"]
EXPLAIN_SCENARIOS = ["explain conc 1", "explain conc 8"]  # the services only
SERVERS = ["service", "naive-async"]
POSITIVE_RATIOS = [
    "throughput_over_raw_best",
    *(f"over_naive-async:{scenario}" for scenario in SCENARIOS),
    "rss_first_mib",
    "rss_last_mib",
    "start_to_ready_s",
    "explain_p50_over_predict:conc 1",
    "explain_p50_over_predict:conc 8",
]
SIGNED_RATIOS = ["overhead_ms", "rss_growth_percent"]  # differences: any finite number


def test_quick_benchmark_reports_every_row_and_ratio(
    exported_model_dir: Path, tmp_path: Path
) -> None:
    results_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.serving", "--quick", "--model-dir",
         str(exported_model_dir), "--json", str(results_path), "--log-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=150,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = json.loads(results_path.read_text())

    raw = results["raw"]["sweep"]
    # TensorFlow's own thread choice, and the threads the service runs with (its defaults for
    # this machine): the overhead is measured against the faster of the two.
    settings = list(dict.fromkeys((run["threads"]["intra_op"], run["threads"]["inter_op"])
                                  for run in raw))
    intra, inter = default_tf_threads(available_cpus())
    assert settings == list(dict.fromkeys([(0, 0), (intra, inter)]))
    assert [run["batch_size"] for run in raw] == [1, 2, 4] * len(settings)
    assert all(run["images_per_s"] > 0 and run["p50_ms"] > 0 for run in raw)

    servers = {server["name"]: server for server in results["servers"]}
    assert sorted(servers) == sorted(SERVERS)
    for name in SERVERS:
        assert servers[name]["start_to_ready_s"] > 0
        scenarios = {result["scenario"]: result for result in servers[name]["scenarios"]}
        expected = SCENARIOS + (EXPLAIN_SCENARIOS if name == "service" else [])
        assert set(expected) <= set(scenarios), name
        assert name == "service" or not set(EXPLAIN_SCENARIOS) & set(scenarios)
        for scenario in expected:
            result = scenarios[scenario]
            assert result["requests"] > 0 and result["errors"] == 0, (name, result)
            for field in ("images_per_s", "p50_ms", "p95_ms", "p99_ms"):
                assert result[field] > 0, (name, scenario, field)
            # Both servers answer with the very model the raw measurement called.
            assert result["max_abs_diff"] < 1e-4, (name, result)

    ratios = {(ratio["server"], ratio["key"]): ratio for ratio in results["ratios"]}
    for key in POSITIVE_RATIOS:
        value = ratios[("service", key)]["value"]
        assert isinstance(value, float) and value > 0, (key, value)
    for key in SIGNED_RATIOS:
        value = ratios[("service", key)]["value"]
        assert isinstance(value, float) and math.isfinite(value), (key, value)
    assert ratios[("naive-async", "throughput_over_raw_best")]["value"] > 0

    table = completed.stdout
    for heading in ("### Raw model", "### Over HTTP", "### Ratios and targets"):
        assert heading in table
    for ratio in results["ratios"]:
        assert f"| {ratio['server']} | {ratio['label']} |" in table

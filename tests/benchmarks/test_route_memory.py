"""The route-memory benchmark (benchmarks/route_memory.py) on the tiny exported model: a real
service process is driven through every route, its memory read when ready and after each one,
and a variant runs after it with its own environment. It checks the benchmark works, not how
much memory anything takes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ROUTES = ["/predict", "/explain", "/explain png", "DICOM"]


def test_every_route_is_driven_and_memory_read_after_it(exported_model_dir: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.route_memory", "--model-dir", str(exported_model_dir),
         "--max-images", "8", "--requests", "12", "--passes", "1",
         "--variant", "arenas2:MALLOC_ARENA_MAX=2"],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in completed.stdout.splitlines() if line.startswith("| service")
            or line.startswith("| arenas2")]
    expected = ["ready", *(f"pass 1, {route}" for route in ROUTES)]
    assert [(row[0], row[1]) for row in rows] == [
        (server, after) for server in ("service", "arenas2") for after in expected]
    for row in rows:
        requests, errors, rss, pss = (float(cell.replace(",", "")) for cell in row[2:])
        assert errors == 0, row
        assert requests > 0 or row[1] == "ready"
        assert rss > 100 and pss > 100, row  # a process with TensorFlow loaded

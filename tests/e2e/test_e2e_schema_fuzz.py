"""Schema fuzzing: schemathesis (its CLI, every phase) against the running service
(tests/e2e/conftest.py) with every check switched on, and zero failures.

One setting, not an exclusion: `positive_data_acceptance` sends data that fits the schema and
expects it accepted. Some answers to schema-valid data are right and the schema cannot say so:
- 413 (too many pixels), 415 (not an image), 422 (undecodable): the schema can say "a binary
  file" but not "a decodable image", so a file that fits it may be refused for what it holds;
- 404: the Open Inference Protocol's paths name a model and version, and the schema cannot list
  which ones this server serves; any other name is answered 404, as the protocol says;
- 400: an OIP `infer` body sent as `application/octet-stream` (the binary-data extension) must
  start with a JSON inference header of the length given in `Inference-Header-Content-Length`;
  the schema cannot say that the body's first bytes are JSON.
They are accepted here as well as 2xx. Every other check runs with its defaults.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from server_process import EDGE_API_KEY, RunningServer

pytestmark = pytest.mark.e2e

# Bounded for CI time (seconds here): examples per operation and generation mode.
MAX_EXAMPLES = 50
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "404", "413", "415", "422"]
"""


def test_the_api_matches_its_schema_under_fuzzing(
    edge_server: RunningServer, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    run = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
            f"{edge_server.url}/openapi.json", "--checks", "all",
            "--max-examples", str(MAX_EXAMPLES), "--seed", "1", "--generation-deterministic",
            "--header", f"X-API-Key: {EDGE_API_KEY}", "--request-timeout", "30",
            "--report", "junit", "--report-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    paths = httpx.get(f"{edge_server.url}/openapi.json").json()["paths"]
    operations = sum(len(item) for item in paths.values())
    tested = next(line for line in run.stdout.splitlines() if "Tested:" in line)
    assert tested.split()[-1] == str(operations), run.stdout  # every operation was exercised

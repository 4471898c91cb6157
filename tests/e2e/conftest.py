"""The end-to-end tests' shared server: one `python -m service` process with small limits (so
the connection bounds can be reached quickly), an API key and JSON logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import EDGE_SETTINGS, RunningServer, service_process


@pytest.fixture(scope="session")
def edge_server(
    exported_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    log = tmp_path_factory.mktemp("edge") / "server.log"
    with service_process(exported_model_dir, log, EDGE_SETTINGS) as server:
        yield server
    assert server.exit_code == [0], server.log_text()

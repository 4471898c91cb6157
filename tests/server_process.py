"""A real `python -m service` process on 127.0.0.1 for the end-to-end tests: started with the
settings given, waited on until ready, stopped with SIGTERM (its exit status is kept)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
# The shared edge server (tests/e2e/conftest.py): small limits, so the bounds are reached quickly.
EDGE_API_KEY = "edge-test-key"
EDGE_SETTINGS = {
    "MRI_API_KEY": EDGE_API_KEY,
    "MRI_MAX_HEADER_BYTES": "8192",
    "MRI_HEADER_TIMEOUT_SECONDS": "2",
    "MRI_BODY_TIMEOUT_SECONDS": "4",
    "MRI_MAX_CONNECTIONS": "4",
    "MRI_LOG_FORMAT": "json",
    "MRI_ACCESS_LOG": "true",
    "MRI_MAX_WAIT_MS": "2",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    exit_code: list[int] = field(default_factory=list)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit status (kept for the caller)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self.exit_code.append(code)
        return code


def wait_ready(server: RunningServer, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.log_text()
        try:
            if httpx.get(f"{server.url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"service not ready: {server.log_text()}")


@contextmanager
def service_process(
    model_dir: Path, log: Path, env: dict[str, str] | None = None, ready: bool = True
) -> Iterator[RunningServer]:
    port = free_port()
    environment = {
        **os.environ, "MRI_ACCESS_LOG": "false", "PYTHONUNBUFFERED": "1",
        "MRI_HOST": "127.0.0.1", "MRI_PORT": str(port), "MRI_MODEL_DIR": str(model_dir),
        **(env or {}),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"], cwd=REPO, env=environment, stdout=output,
            stderr=subprocess.STDOUT,
        )
        server = RunningServer(f"http://127.0.0.1:{port}", port, process, log)
        try:
            if ready:
                wait_ready(server)
            yield server
        finally:
            if process.poll() is None:
                server.stop()


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and JSON body of one answer; then the server must close the socket."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    pairs = (line.split(": ", 1) for line in lines[1:])
    headers = {name.lower(): value for name, value in pairs}
    return int(lines[0].split()[1]), headers, json.loads(body)

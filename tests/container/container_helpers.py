"""Helpers for the container tests (a module of its own: conftest modules are not importable)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.ci.yml")
HEALTHY_TIMEOUT_S = 240.0
LOCAL_READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Docker:
    """How to reach the engine and compose, and which image to test."""

    compose: tuple[str, ...]
    compose_major: int
    image_tag: str

    @property
    def image(self) -> str:
        return f"brain-mri-classifier:{self.image_tag}"


@dataclass(frozen=True)
class ApiContainer:
    docker: Docker
    project: str
    container_id: str
    base_url: str
    models_dir: Path
    env: dict[str, str]
    seconds_to_ready: float
    seconds_to_healthy: float

    def compose(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return run_compose(self.docker, self.project, self.env, *args, timeout=timeout)


@dataclass(frozen=True)
class LocalService:
    base_url: str
    models_dir: Path


def unavailable(reason: str) -> NoReturn:
    """Skip on a developer's machine, fail under CI: no silent green without the image."""
    if os.environ.get("CI"):
        pytest.fail(f"container tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def run(
    args: list[str] | tuple[str, ...], timeout: float = 120.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, env=env, check=False,
        stdin=subprocess.DEVNULL,
    )


def find_compose() -> tuple[str, ...] | None:
    """MRI_COMPOSE (e.g. "docker compose" or a path), else the `docker compose` plugin, else
    docker-compose (v1 or v2)."""
    chosen = os.environ.get("MRI_COMPOSE")
    if chosen:
        return tuple(chosen.split())
    if run(["docker", "compose", "version"], timeout=30).returncode == 0:
        return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    return None


def compose_major_version(compose: tuple[str, ...]) -> int:
    version = run([*compose, "version", "--short"], timeout=30)
    assert version.returncode == 0, f"{' '.join(compose)} version failed: {version.stderr}"
    return int(version.stdout.strip().lstrip("v").split(".")[0])


def run_compose(
    docker: Docker, project: str, env: dict[str, str], *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    files = [arg for name in COMPOSE_FILES for arg in ("-f", str(REPO / name))]
    return run([*docker.compose, "-p", project, *files, *args], timeout=timeout, env=env)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def has_model(models_dir: Path) -> bool:
    return any(models_dir.glob("*/[0-9]*/saved_model.pb"))


def make_world_readable(root: Path) -> None:
    """The container's user (uid 10001) must read a mounted models folder."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def wait_ready(
    base_url: str, timeout: float, alive: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"the service exited with {alive.returncode} before ready")
        try:
            response = httpx.get(f"{base_url}/health/ready", timeout=5)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.25)
    raise AssertionError(f"{base_url} not ready after {timeout:.0f} s: {last}")


def container_state(container_id: str) -> tuple[str, str]:
    """(State.Status, State.Health.Status) of a container."""
    inspect = run(
        ["docker", "inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}",
         container_id],
        timeout=30,
    )
    assert inspect.returncode == 0, inspect.stderr
    status, _, health = inspect.stdout.strip().partition(" ")
    return status, health


def wait_healthy(container_id: str, base_url: str, started: float) -> tuple[float, float]:
    """Seconds from `compose up` until /health/ready first answers 200, and until Docker's
    healthcheck (the same URL, every 2 s under the CI override) says healthy."""
    first_ready: float | None = None
    while time.monotonic() - started < HEALTHY_TIMEOUT_S:
        if first_ready is None:
            try:
                if httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200:
                    first_ready = time.monotonic() - started
            except httpx.HTTPError:
                pass
        status, health = container_state(container_id)
        if health == "healthy":
            healthy = time.monotonic() - started
            return (healthy if first_ready is None else first_ready), healthy
        if status in {"exited", "dead"} or health == "unhealthy":
            logs = run(["docker", "logs", "--tail", "80", container_id], timeout=30)
            raise AssertionError(
                f"container {status}/{health} before healthy:\n{logs.stdout}\n{logs.stderr}"
            )
        time.sleep(0.25)
    raise AssertionError(f"container not healthy after {HEALTHY_TIMEOUT_S:.0f} s")


def record_timing(**values: object) -> None:
    """Append measurements to $MRI_CONTAINER_TIMINGS (JSON lines), for .ci/container to show."""
    target = os.environ.get("MRI_CONTAINER_TIMINGS")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(values) + "\n")

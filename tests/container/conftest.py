"""Container test fixtures: the image started through docker-compose (with the CI override:
host networking on 127.0.0.1) and the same service started outside any container, both on the
same models folder, so their answers can be compared.

The image is built beforehand (`.ci/container` does it, as `brain-mri-classifier:$IMAGE_TAG`);
these tests never build, pull or push. Without a reachable Docker engine they skip, except
under CI (`CI` set), where they fail: a CI run must not pass without exercising the image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from container_helpers import (
    REPO,
    ApiContainer,
    Docker,
    LocalService,
    compose_major_version,
    find_compose,
    free_port,
    has_model,
    make_world_readable,
    record_timing,
    run,
    run_compose,
    unavailable,
    wait_healthy,
    wait_ready,
)

LOCAL_READY_TIMEOUT_S = 180.0


@pytest.fixture(scope="session")
def docker() -> Docker:
    if shutil.which("docker") is None:
        unavailable("no docker client on PATH")
    info = run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30)
    if info.returncode != 0:
        unavailable(
            "no Docker engine reachable (`docker info` failed: "
            f"{(info.stderr or info.stdout).strip()[:300]}); .ci/container starts one"
        )
    compose = find_compose()
    if compose is None:
        unavailable("neither docker-compose nor `docker compose` is installed")
    found = Docker(
        compose=compose,
        compose_major=compose_major_version(compose),
        image_tag=os.environ.get("IMAGE_TAG", "latest"),
    )
    if run(["docker", "image", "inspect", found.image], timeout=30).returncode != 0:
        unavailable(
            f"image {found.image} is not built; build it first (`.ci/container` does), e.g. "
            "DOCKER_BUILDKIT=0 docker build --target runtime -t brain-mri-classifier:latest ."
        )
    return found


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """The repository's models/ when it holds a model (what the image ships), else the tiny
    test model exported through training.export (tests/conftest.py), readable by uid 10001."""
    shipped = REPO / "models"
    if has_model(shipped):
        return shipped
    exported: Path = request.getfixturevalue("exported_model_dir")
    copy = tmp_path_factory.mktemp("container-models") / "models"
    shutil.copytree(exported, copy)
    make_world_readable(copy)
    return copy


@pytest.fixture(scope="module")
def api_container(docker: Docker, models_dir: Path) -> Iterator[ApiContainer]:
    """`api` from docker-compose.yml + docker-compose.ci.yml, healthy; torn down afterwards."""
    port = free_port()
    project = f"mri-ct-{uuid.uuid4().hex[:8]}"
    # The service's settings are left at their defaults: no MRI_* from the caller's shell.
    env = {key: value for key, value in os.environ.items() if not key.startswith("MRI_")}
    env.update(API_PORT=str(port), MODELS_DIR=str(models_dir), IMAGE_TAG=docker.image_tag)
    container_id = ""
    started = time.monotonic()
    if docker.compose_major >= 2:
        up = run_compose(docker, project, env, "up", "-d", "--no-build", "api", timeout=180)
    else:
        # Compose v1 refuses host networking beside the base file's port mapping (and an
        # override cannot remove it); `run` leaves ports out and keeps everything else.
        up = run_compose(docker, project, env, "run", "-d", "--no-deps", "api", timeout=180)
    try:
        assert up.returncode == 0, f"compose up failed:\n{up.stdout}\n{up.stderr}"
        if docker.compose_major >= 2:
            ps = run_compose(docker, project, env, "ps", "-q", "api")
            container_id = ps.stdout.strip()
        else:
            container_id = up.stdout.strip().splitlines()[-1] if up.stdout.strip() else ""
        assert container_id, f"no api container: {up.stdout}\n{up.stderr}"
        base_url = f"http://127.0.0.1:{port}"
        ready_s, healthy_s = wait_healthy(container_id, base_url, started)
        record_timing(compose=" ".join(docker.compose), seconds_to_ready=round(ready_s, 1),
                      seconds_to_healthy=round(healthy_s, 1))
        yield ApiContainer(
            docker=docker,
            project=project,
            container_id=container_id,
            base_url=base_url,
            models_dir=models_dir,
            env=env,
            seconds_to_ready=ready_s,
            seconds_to_healthy=healthy_s,
        )
    finally:
        logs = run(["docker", "logs", "--tail", "60", container_id or "none"], timeout=30)
        sys.stderr.write(f"--- api container log (tail) ---\n{logs.stdout}{logs.stderr}\n")
        down = run_compose(
            docker, project, env, "down", "--remove-orphans", "--timeout", "5", timeout=120
        )
        assert down.returncode == 0, f"compose down failed:\n{down.stdout}\n{down.stderr}"


@pytest.fixture(scope="module")
def local_service(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    LocalService
]:
    """`python -m service` outside any container, on a free 127.0.0.1 port, same models."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("local-service") / "service.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("MRI_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port),
             "--model-dir", str(models_dir)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, LOCAL_READY_TIMEOUT_S, alive=process)
        yield LocalService(base_url=base_url, models_dir=models_dir)
    except AssertionError:
        sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)

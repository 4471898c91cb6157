"""The Docker image, started through docker-compose as a user would: it becomes healthy, answers
exactly as the service run outside a container, runs as a non-root user with the service as
PID 1, ships the repository's models/, and stops cleanly on SIGTERM after finishing a request
that is in flight. The SIGTERM test stops the container, so it comes last."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest
from container_helpers import REPO, ApiContainer, Docker, LocalService, record_timing, run

pytestmark = pytest.mark.container

TOLERANCE = 1e-5
STOP_GRACE_S = 20
# Real slices from the shared data set, when it lies beside the repository (as in CI).
SHARED_DATA = REPO.parent / "shared" / "datasets" / "brain-tumor-mri"
REAL_FILES_PER_CLASS = 2


def real_slices() -> dict[str, bytes]:
    """A few real files per class folder (whatever their format), in a fixed order."""
    found: dict[str, bytes] = {}
    if not SHARED_DATA.is_dir():
        return found
    for class_dir in sorted(p for p in SHARED_DATA.iterdir() if p.is_dir()):
        files = sorted(p for p in class_dir.iterdir() if p.is_file())[:REAL_FILES_PER_CLASS]
        for path in files:
            found[f"real:{class_dir.name}/{path.name}"] = path.read_bytes()
    return found


@pytest.fixture(scope="module")
def uploads(sample_images: dict[str, bytes]) -> dict[str, bytes]:
    """The shared test images (PNG and JPEG in several modes, and the other formats the service
    converts, all made with Pillow) plus a few real slices when the data set is present."""
    return {**sample_images, **real_slices()}


def post_image(base_url: str, name: str, data: bytes) -> httpx.Response:
    return httpx.post(
        f"{base_url}/predict", files={"file": (name, data, "application/octet-stream")},
        timeout=60,
    )


def test_container_is_healthy_and_serves_its_pages(api_container: ApiContainer) -> None:
    ready = httpx.get(f"{api_container.base_url}/health/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert httpx.get(f"{api_container.base_url}/health/live", timeout=10).status_code == 200
    docs = httpx.get(f"{api_container.base_url}/docs", timeout=10)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    page = httpx.get(f"{api_container.base_url}/", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    model = httpx.get(f"{api_container.base_url}/model", timeout=10)
    assert model.status_code == 200
    assert model.json()["name"] == ready.json()["model"]["name"]
    stats = run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}",
                 api_container.container_id], timeout=60)
    record_timing(memory_when_ready=stats.stdout.strip())


def test_answers_equal_the_service_outside_the_container(
    api_container: ApiContainer, local_service: LocalService, uploads: dict[str, bytes]
) -> None:
    assert api_container.models_dir == local_service.models_dir
    compared = 0
    for name, data in uploads.items():
        inside = post_image(api_container.base_url, name, data)
        outside = post_image(local_service.base_url, name, data)
        assert inside.status_code == outside.status_code, (name, inside.text, outside.text)
        if outside.status_code != 200:
            assert inside.json()["type"] == outside.json()["type"], name
            continue
        got, want = inside.json(), outside.json()
        assert got["label"] == want["label"], (name, got, want)
        assert got["model"] == want["model"], (name, got, want)
        assert got["threshold"] == want["threshold"], name
        assert abs(got["tumor_probability"] - want["tumor_probability"]) <= TOLERANCE, (
            name, got, want
        )
        compared += 1
    assert {"png_L", "png_RGB", "jpeg_L", "jpeg_RGB"} <= set(uploads)
    # A model with an input gate may refuse some synthetic slices (they are not MRI, and both
    # sides must agree, checked above); real slices, when the data set is here, are answered.
    for name in (name for name in uploads if name.startswith("real:")):
        assert post_image(api_container.base_url, name, uploads[name]).status_code == 200, name
    assert compared >= 4


def test_runs_as_non_root_with_the_service_as_pid_1(api_container: ApiContainer) -> None:
    uid = run(["docker", "exec", api_container.container_id, "id", "-u"], timeout=30)
    assert uid.returncode == 0, uid.stderr
    assert uid.stdout.strip() not in {"", "0"}, uid.stdout
    # Exec form: PID 1 is python itself (no shell in between to swallow SIGTERM).
    cmdline = run(
        ["docker", "exec", api_container.container_id, "cat", "/proc/1/cmdline"], timeout=30
    )
    assert cmdline.stdout.split("\0")[:3] == ["python3", "-m", "service"], cmdline.stdout


# Run inside the image (python3 only, no project code) and here, on the repository's models/.
TREE_DIGEST = """
import hashlib, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
print(json.dumps({
    str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
    for p in sorted(root.rglob("*"))
    if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
}))
"""


def test_image_ships_the_repository_models(docker: Docker) -> None:
    """What `COPY models/` put in the image is the repository's models/ (dot-files and
    half-written export folders aside, which .dockerignore may leave out)."""
    baked = run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3", docker.image,
         "-c", TREE_DIGEST, "/app/models"],
        timeout=120,
    )
    assert baked.returncode == 0, baked.stderr
    local = run([sys.executable, "-c", TREE_DIGEST, str(REPO / "models")], timeout=60)
    assert local.returncode == 0, local.stderr
    assert json.loads(baked.stdout) == json.loads(local.stdout)


def multipart(field: str, filename: str, data: bytes) -> tuple[str, bytes]:
    boundary = f"mri-{uuid.uuid4().hex}"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
        f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def read_http_response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        decoded, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            decoded, rest = decoded + rest[:size], rest[size + 2 :]
        body = decoded
    parsed: dict[str, Any] = json.loads(body)
    return status, parsed


def wait_for_log(container_id: str, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = run(["docker", "logs", container_id], timeout=30)
        if text in logs.stdout + logs.stderr:
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in the container's log after {timeout:.0f} s")


def test_sigterm_finishes_the_request_in_flight_and_exits_cleanly(
    api_container: ApiContainer, local_service: LocalService, uploads: dict[str, bytes]
) -> None:
    """`docker stop` sends SIGTERM: uvicorn stops listening, lets a request whose body is still
    arriving complete with a real answer, and exits 0 well inside the grace period."""
    # A real slice when the data set is here (a gated model may refuse a synthetic one).
    data = next((v for k, v in uploads.items() if k.startswith("real:")), uploads["png_L"])
    expected = post_image(local_service.base_url, "slice.png", data).json()
    content_type, body = multipart("file", "slice.png", data)
    port = int(api_container.base_url.rsplit(":", 1)[1])
    half = len(body) // 2
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            (
                f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode() + body[:half]
        )
        time.sleep(1.0)  # the server has read the headers: the request is in flight
        started = time.monotonic()
        stop = subprocess.Popen(
            ["docker", "stop", "-t", str(STOP_GRACE_S), api_container.container_id],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            wait_for_log(api_container.container_id, "Shutting down", timeout=10)
            sock.sendall(body[half:])
            status, answer = read_http_response(sock)
        finally:
            out, err = stop.communicate(timeout=STOP_GRACE_S + 30)
    elapsed = time.monotonic() - started
    assert stop.returncode == 0, err
    assert status == 200, answer
    assert answer["label"] == expected["label"]
    assert abs(answer["tumor_probability"] - expected["tumor_probability"]) <= TOLERANCE
    inspect = run(
        ["docker", "inspect", "--format",
         "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}",
         api_container.container_id],
        timeout=30,
    )
    assert inspect.stdout.split() == ["exited", "0", "false"], inspect.stdout
    assert elapsed < STOP_GRACE_S, f"took {elapsed:.1f} s: killed at the end of the grace period?"
    logs = run(["docker", "logs", api_container.container_id], timeout=30)
    assert "Finished server process" in logs.stdout + logs.stderr
    record_timing(seconds_to_stop=round(elapsed, 1))

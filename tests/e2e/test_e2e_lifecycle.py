"""How a real server process ends: a request still running when the shutdown grace period ends
is answered 503 + Retry-After and the process exits 0; a model that cannot be loaded ends the
process with status 3 and a one-line reason."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from server_process import read_answer, service_process

pytestmark = pytest.mark.e2e


def test_a_request_cut_by_the_grace_period_gets_503_and_the_exit_is_clean(
    exported_model_dir: Path, tmp_path: Path
) -> None:
    settings = {"MRI_GRACEFUL_SHUTDOWN_SECONDS": "1", "MRI_BODY_TIMEOUT_SECONDS": "60",
                "MRI_RETRY_AFTER_SECONDS": "7"}
    with service_process(exported_model_dir, tmp_path / "server.log", settings) as server:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.settimeout(30)
            sock.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Request-ID: cut-1\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 900\r\n\r\n--b"
            )  # the rest of the body never comes: the request is still running at SIGTERM
            # Let the server read those headers (a later round trip on another connection
            # means the loop has seen the earlier bytes) before the signal.
            time.sleep(1.0)
            assert httpx.get(f"{server.url}/health/live", timeout=30).status_code == 200
            server.process.send_signal(signal.SIGTERM)
            status, headers, body = read_answer(sock)
        # Wait for the exit of the SIGTERM above; stop() would send a second one if the
        # process were still tearing TensorFlow down (slow on a loaded machine), which can end
        # it by the signal instead of its own clean exit (this failed once in the full suite).
        code = server.process.wait(60)
    assert status == 503 and headers["retry-after"] == "7"
    assert body["type"].endswith(":shutting_down") and body["request_id"] == "cut-1"
    assert code == 0, (code, server.log_text())
    log = server.log_text()
    assert log.count("grace period ended") == 1 and "Traceback" not in log


def test_a_model_that_cannot_be_loaded_ends_the_process(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    with service_process(empty, tmp_path / "server.log", ready=False) as server:
        code = server.process.wait(120)
    assert code == 3
    lines = [line for line in server.log_text().splitlines() if "CRITICAL" in line]
    assert len(lines) == 1 and "exiting: the model could not be loaded" in lines[0], lines

"""Server processes under test: started as users start them, on a free loopback port, timed from
process start to ready, their resident memory read from /proc, stopped at the end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter

from service.config import Settings

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


class ServerFailed(RuntimeError):
    """The server exited or did not become ready in time; the message carries its log's tail."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


# The input gate in `report` mode: every image is scored by it (its cost is in every figure)
# and answered, so a synthetic or unusual slice is never counted as an error. A variant can
# set MRI_INPUT_GATE=enforce to measure refusals.
BENCHMARK_DEFAULTS = {"MRI_INPUT_GATE": "report"}


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """This environment without any MRI_* setting (so a run measures the defaults, whatever
    the shell has exported, except BENCHMARK_DEFAULTS), plus the variant's own variables.
    Modules are imported from PYTHONPATH only (`python -P`): the repository, after the
    variant's PYTHONPATH if it has one, so a patched copy of `service/` can run beside the
    checkout's in one benchmark."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MRI_")}
    paths = [extra["PYTHONPATH"]] if extra.get("PYTHONPATH") else []
    paths += [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    return {**env, **BENCHMARK_DEFAULTS, **extra, "PYTHONPATH": os.pathsep.join(paths),
            "PYTHONUNBUFFERED": "1"}


def rss_bytes(pid: int) -> int:
    """Resident set size (VmRSS) of a process, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (servers such as LitServe and BentoML run their model
    in child processes), from each process's parent id in /proc/<pid>/stat."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # it ended meanwhile
        parents.setdefault(parent, []).append(int(entry))
    found, frontier = [pid], [pid]
    while frontier:
        children = [child for parent in frontier for child in parents.get(parent, [])]
        found += children
        frontier = children
    return found


def pss_bytes(pid: int) -> int:
    """Proportional set size of a process and all its descendants (/proc/<pid>/smaps_rollup):
    shared pages are split between the processes that map them, so a server made of several
    processes is neither flattered nor double-counted."""
    total = 0
    for member in descendants(pid):
        try:
            with open(f"/proc/{member}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its living descendants (their own threads included)."""
    total = 0.0
    for member in descendants(pid):
        try:
            total += cpu_seconds(member)
        except (OSError, ValueError, IndexError):
            continue
    return total


def main_thread_cpu_seconds(pid: int) -> float:
    """CPU time of a process's first thread alone (the service's event loop: HTTP parsing,
    routing, multipart, JSON), from /proc/<pid>/task/<pid>/stat."""
    return cpu_seconds(pid, f"/proc/{pid}/task/{pid}/stat")


def cpu_seconds(pid: int, path: str | None = None) -> float:
    """User plus system CPU time of a process, all threads, from /proc/<pid>/stat."""
    with open(path or f"/proc/{pid}/stat") as stat:
        # Fields after the command name (which may hold spaces) start at field 3, the state.
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ServerProcess:
    name: str
    kind: str
    env: dict[str, str]
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    spawned_at: float
    ready_path: str = "/health/ready"
    start_to_ready_s: float = float("nan")
    pss_ready: int = 0  # bytes, whole process tree, read by benchmarks/compare.py
    pss_end: int = 0
    requests_done: int = 0
    rss_checkpoints: dict[int, int] = field(default_factory=dict)
    rss_trace: list[tuple[int, int]] = field(default_factory=list)  # (requests, VmRSS bytes)

    def rss_bytes(self) -> int:
        return rss_bytes(self.process.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def tree_cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.process.pid)

    def pss_bytes(self) -> int:
        return pss_bytes(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def count_request(self, checkpoints: tuple[int, ...], trace_every: int) -> None:
        """Called once per finished request: reads the RSS when the count hits a checkpoint,
        and every `trace_every` requests (whether memory levels off or keeps growing)."""
        self.requests_done += 1
        if self.requests_done in checkpoints:
            self.rss_checkpoints[self.requests_done] = self.rss_bytes()
        if self.requests_done % trace_every == 0:
            self.rss_trace.append((self.requests_done, self.rss_bytes()))

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; child processes the server left behind (a
        peer's workers) are killed too, by their ids."""
        if self.process.poll() is not None:
            return
        children = descendants(self.process.pid)[1:]
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass


def spawn_server(
    name: str,
    kind: str,
    module_args: list[str],
    env: dict[str, str],
    log_dir: Path,
    port: int | None = None,
    cpus: frozenset[int] | None = None,
    python: str = sys.executable,
    ready_path: str = "/health/ready",
) -> ServerProcess:
    """Run `python -m <module_args> --host 127.0.0.1 --port <port>` (a free port unless given),
    logging to a file (appended to, so a restarted server keeps its predecessor's log); `cpus`
    pins the process and every thread it starts to those CPUs, like a container's CPU limit;
    `python` may be another environment's interpreter (the peers')."""
    port = free_port() if port is None else port
    command = [python, "-P", "-m", *module_args, "--host", LOOPBACK, "--port", str(port)]
    log_path = log_dir / f"{name}.log"

    def pin() -> None:
        assert cpus is not None
        os.sched_setaffinity(0, cpus)

    with log_path.open("ab") as log:
        spawned_at = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=REPO, env=clean_environment(env), stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=pin if cpus is not None else None,
        )
    return ServerProcess(name, kind, env, f"http://{LOOPBACK}:{port}", process, log_path,
                         spawned_at, ready_path)


def service_setting(env: Mapping[str, str], field: str, kind: type[int] | type[bool]) -> Any:
    """A setting of a service started with this environment: its MRI_ variable, parsed as
    the settings parse it, else the service's own default (service/config.py) here."""
    name = f"MRI_{field.upper()}"
    if name in env:
        return TypeAdapter(kind).validate_python(env[name])
    return Settings.model_fields[field].get_default(call_default_factory=True)


def freezes_graph(server: ServerProcess) -> bool:
    """A service that swaps in frozen signatures after ready (MRI_FREEZE_GRAPH)."""
    return server.kind == "service" and bool(service_setting(server.env, "freeze_graph", bool))


def wait_until_frozen(server: ServerProcess, client: httpx.Client, timeout: float) -> None:
    """After ready, until a freezing service's `mri_model_graph_frozen` is 1 (or its log says
    the graph was left as exported): its memory and speed are read as it serves from then on,
    not while it is still freezing."""
    while freezes_graph(server):
        frozen = "mri_model_graph_frozen 1.0" in client.get(f"{server.url}/metrics").text
        if frozen or "left as exported" in server.log_path.read_text(errors="replace"):
            return
        if time.perf_counter() - server.spawned_at > timeout:
            raise ServerFailed(f"{server.name} not frozen after {timeout:.0f} s:\n"
                               f"{server.log_tail()}")
        time.sleep(0.1)


def wait_until_ready(server: ServerProcess, timeout: float) -> None:
    """Poll the server's ready path (/health/ready) every 50 ms (connection refused counts as
    not ready); start-to-ready runs from just before the process was spawned to the first
    200. Polling faster would measure no better and would slow the start it measures (each
    poll takes the GIL)."""
    with httpx.Client(timeout=2.0) as client:
        while True:
            if server.process.poll() is not None:
                raise ServerFailed(
                    f"{server.name} exited with {server.process.returncode}:\n"
                    f"{server.log_tail()}"
                )
            try:
                if client.get(f"{server.url}{server.ready_path}").status_code == 200:
                    server.start_to_ready_s = time.perf_counter() - server.spawned_at
                    wait_until_frozen(server, client, timeout)
                    return
            except httpx.TransportError:
                pass
            if time.perf_counter() - server.spawned_at > timeout:
                raise ServerFailed(
                    f"{server.name} not ready after {timeout:.0f} s:\n{server.log_tail()}"
                )
            time.sleep(0.05)

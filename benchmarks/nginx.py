"""Debian's nginx run in the foreground with the shipped site config (deploy/nginx/), under a
private prefix: its own pid file, logs and temporary folders, nothing under /etc or /var."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.servers import LOOPBACK, REPO, free_port

SITE_CONFIG = REPO / "deploy" / "nginx" / "brain-mri-classifier.conf"
UPSTREAM_SERVER = re.compile(r"^(\s*server\s+)127\.0\.0\.1:\d+(\s)", re.MULTILINE)
LISTEN = re.compile(r"^(\s*listen\s+)127\.0\.0\.1:\d+;", re.MULTILINE)
ACCESS_LOG = re.compile(r"^(\s*access_log\s+)\S+(\s+mri_upstreams;)", re.MULTILINE)


class NginxFailed(RuntimeError):
    """nginx is missing, refused the config or did not come up; the message says which."""


def render_site(template: str, replica_ports: list[int], listen_port: int, access_log: Path) -> str:
    """The shipped config with only its addresses and log path changed: the upstream servers to
    `replica_ports`, the listen port, the access log. Fails if the shipped file has a different
    number of upstream servers, so what runs is what ships."""
    ports = iter(replica_ports)
    site, servers = UPSTREAM_SERVER.subn(
        lambda match: f"{match.group(1)}{LOOPBACK}:{next(ports)}{match.group(2)}", template
    )
    site, listens = LISTEN.subn(lambda m: f"{m.group(1)}{LOOPBACK}:{listen_port};", site)
    site, logs = ACCESS_LOG.subn(lambda m: f"{m.group(1)}{access_log}{m.group(2)}", site)
    if (servers, listens, logs) != (len(replica_ports), 1, 1):
        raise NginxFailed(
            f"{SITE_CONFIG} has {servers} upstream servers, {listens} listen and {logs} "
            f"access_log lines; expected {len(replica_ports)}, 1 and 1"
        )
    return site


def main_config(prefix: Path, site: Path) -> str:
    """nginx.conf around the site: foreground, one worker, every path under `prefix`."""
    # As root, nginx would run its workers as `nobody`, which cannot enter a private temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "".join(
        f"    {kind}_temp_path {prefix / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} info;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n{temp_paths}    access_log off;\n    include {site};\n}}\n"
    )


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    url: str
    prefix: Path
    access_log: Path

    def error_log_tail(self, lines: int = 20) -> str:
        path = self.prefix / "error.log"
        text = path.read_text(errors="replace") if path.exists() else "(no error log)"
        return "\n".join(text.splitlines()[-lines:])

    def problems(self) -> list[str]:
        """The error log's lines at level error or worse (a failed attempt on a replica, a
        client connection nginx dropped): what explains a failed client request."""
        path = self.prefix / "error.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        levels = ("[error]", "[crit]", "[alert]", "[emerg]")
        return [line for line in text.splitlines() if any(level in line for level in levels)]

    def stop(self) -> None:
        """SIGQUIT: graceful shutdown, as `nginx -s quit` sends."""
        if self.process.poll() is None:
            self.process.send_signal(3)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_nginx(replica_ports: list[int], prefix: Path, timeout: float = 15.0) -> Nginx:
    """Check the rendered config with `nginx -t`, then run nginx and wait until it accepts."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise NginxFailed("nginx is not installed (Debian: apt-get install nginx)")
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    access_log = prefix / "access.log"
    site = prefix / "site.conf"
    site.write_text(render_site(SITE_CONFIG.read_text(), replica_ports, port, access_log))
    config = prefix / "nginx.conf"
    config.write_text(main_config(prefix, site))
    command = [binary, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    if checked.returncode != 0:
        raise NginxFailed(f"nginx -t refused the config:\n{checked.stderr}")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nginx = Nginx(process, f"http://{LOOPBACK}:{port}", prefix, access_log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NginxFailed(f"nginx exited with {process.returncode}:\n"
                              f"{nginx.error_log_tail()}")
        try:
            httpx.get(f"{nginx.url}/health/live", timeout=2.0)
            return nginx
        except httpx.TransportError:
            time.sleep(0.05)
    nginx.stop()
    raise NginxFailed(f"nginx did not accept connections in {timeout:.0f} s")


@dataclass(frozen=True)
class AccessRecord:
    """One client request as nginx logged it: every replica tried, in order, and its answer."""

    at: float  # epoch seconds, when nginx finished the request
    status: int  # what the client got
    upstreams: tuple[str, ...]  # "127.0.0.1:8002", one per attempt
    upstream_statuses: tuple[str, ...]  # "502", "200", one per attempt
    request: str

    @property
    def retried(self) -> bool:
        return len(self.upstreams) > 1


def read_access_log(path: Path) -> list[AccessRecord]:
    """Parse the `mri_upstreams` log format of deploy/nginx/brain-mri-classifier.conf."""
    records = []
    pattern = re.compile(r'^(\S+) (\d+) "([^"]*)" "([^"]*)" \S+ "([^"]*)"$')
    for line in path.read_text().splitlines():
        match = pattern.match(line)
        if match is None:
            raise ValueError(f"unexpected access log line: {line!r}")
        at, status, upstreams, statuses, request = match.groups()
        records.append(AccessRecord(
            float(at), int(status),
            tuple(part.strip() for part in upstreams.split(",")),
            tuple(part.strip() for part in statuses.split(",")),
            request,
        ))
    return records

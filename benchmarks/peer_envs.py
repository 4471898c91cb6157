"""The peers' environments: one virtual environment per peer framework, built once from pinned
versions under a cache folder (never the project's dependencies), with the same TensorFlow
as the project so every server runs the same model runtime.

`python -m benchmarks.peer_envs` builds them ahead of a run; `benchmarks.compare --peers`
builds what is missing itself. A folder's name carries a hash of its requirements, so a new
pin builds a new environment beside the old one.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class Peer:
    name: str
    requirements: tuple[str, ...]
    module_args: tuple[str, ...]  # after `python -P -m`; --host and --port follow
    ready_path: str
    batching: str  # how its documented batching is configured in the benchmark


PEERS = {
    "litserve": Peer(
        "litserve",
        ("litserve==0.2.19", "python-multipart==0.0.34"),  # file uploads need it
        ("benchmarks.peer_apps.litserve_app",),
        "/health",
        "LitAPI(max_batch_size=32, batch_timeout=0.005), one worker process",
    ),
    "bentoml": Peer(
        "bentoml",
        ("bentoml==1.4.40",),
        ("bentoml", "serve", "benchmarks.peer_apps.bentoml_service:Classifier"),
        "/readyz",
        "@bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=1000), one worker",
    ),
}


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "brain-mri-bench" / "peers"


def tensorflow_requirement() -> str:
    """The project's TensorFlow distribution, pinned to the installed version."""
    for distribution in ("tensorflow-cpu", "tensorflow"):
        try:
            return f"{distribution}=={metadata.version(distribution)}"
        except metadata.PackageNotFoundError:
            continue
    raise SystemExit("TensorFlow is not installed in this environment: install the serve extra")


def requirements(peer: Peer) -> list[str]:
    return [*peer.requirements, tensorflow_requirement(), "pillow"]


def env_dir(peer: Peer, cache_dir: Path) -> Path:
    digest = hashlib.sha256("\n".join(requirements(peer)).encode()).hexdigest()[:10]
    return cache_dir / f"{peer.name}-{digest}"


def python_of(peer: Peer, cache_dir: Path) -> Path:
    return env_dir(peer, cache_dir) / "bin" / "python"


def ensure_env(peer: Peer, cache_dir: Path, log: Path | None = None) -> Path:
    """The peer environment's Python, building the environment first when it is missing."""
    folder = env_dir(peer, cache_dir)
    done = folder / "requirements.txt"
    wanted = "\n".join(requirements(peer)) + "\n"
    if done.is_file() and done.read_text() == wanted:
        return python_of(peer, cache_dir)
    print(f"building the {peer.name} environment in {folder} ({', '.join(requirements(peer))})",
          file=sys.stderr, flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    command = [str(python_of(peer, cache_dir)), "-m", "pip", "install", "--quiet",
               *requirements(peer)]
    with (log.open("ab") if log else open(os.devnull, "wb")) as output:
        subprocess.run(command, check=True, stdout=output, stderr=subprocess.STDOUT)
    done.write_text(wanted)
    return python_of(peer, cache_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peer_envs",
                                     description="Build the peers' virtual environments.")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    args = parser.parse_args(argv)
    for name in filter(None, args.peers.split(",")):
        if name not in PEERS:
            parser.error(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
        print(ensure_env(PEERS[name], args.cache_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m service`: start the HTTP server (uvicorn, one process) on the settings given."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from service.app import create_app
from service.config import Settings


def parse_args(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="Serve the brain MRI tumor classifier. Every setting is also an MRI_* "
        "environment variable (see the README's settings table); flags win over the environment.",
    )
    parser.add_argument("--host", help="address to listen on (MRI_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (MRI_PORT, default 8000)")
    parser.add_argument(
        "--model-dir", type=Path, help="folder holding <name>/<version>/ (MRI_MODEL_DIR)"
    )
    parser.add_argument("--model-name", help="model to serve when there are several")
    parser.add_argument(
        "--log-level", choices=["critical", "error", "warning", "info", "debug"]
    )
    args = vars(parser.parse_args(argv))
    return {key: value for key, value in args.items() if value is not None}


def logging_config(level: str) -> dict[str, Any]:
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["service"] = {
        "handlers": ["default"], "level": level.upper(), "propagate": False
    }
    return config


def main(argv: list[str] | None = None) -> None:
    settings = Settings(**parse_args(argv))
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=logging_config(settings.log_level),
        access_log=settings.access_log,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_seconds),
        server_header=False,
    )


if __name__ == "__main__":
    main()

"""`python -m service`: start the HTTP server (uvicorn, one process) on the settings given."""

from __future__ import annotations

import argparse
import logging.config
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service.app import create_app
from service.config import Settings
from service.http_server import serve
from service.logs import logging_config

# Exit status for settings that cannot be used (argparse's own errors exit 2 as well).
EXIT_BAD_SETTINGS = 2
FLAGS = {"host": "--host", "port": "--port", "model_dir": "--model-dir",
         "model_name": "--model-name", "log_level": "--log-level"}
SECRET_FIELDS = frozenset({"api_key"})


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


def settings_error_lines(error: ValidationError) -> list[str]:
    """One line per bad setting: the variable (and flag), the value, and what is allowed."""
    lines = []
    for problem in error.errors():
        message = str(problem["msg"]).removeprefix("Value error, ")
        field = str(problem["loc"][0]) if problem["loc"] else ""
        if not field:  # a rule across settings: its message names them
            lines.append(f"error: invalid settings: {message}")
            continue
        name = f"MRI_{field.upper()}" + (f" ({FLAGS[field]})" if field in FLAGS else "")
        value = "<hidden>" if field in SECRET_FIELDS else repr(problem.get("input"))
        lines.append(f"error: {name}={value} is not allowed: {message}")
    return lines


def load_settings(argv: list[str] | None = None) -> Settings:
    try:
        return Settings(**parse_args(argv))
    except ValidationError as error:
        print("\n".join(settings_error_lines(error)), file=sys.stderr)
        raise SystemExit(EXIT_BAD_SETTINGS) from None


def main(argv: list[str] | None = None) -> None:
    settings = load_settings(argv)
    log_config = logging_config(settings.log_level, settings.log_format)
    logging.config.dictConfig(log_config)
    status = serve(create_app(settings), settings, log_config)
    raise SystemExit(status)


if __name__ == "__main__":
    main()

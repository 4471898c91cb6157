"""Request IDs and log records: text lines or one JSON object per line, each carrying the ID
of the request it belongs to (`X-Request-ID`: the client's, when it sends a sensible one).

What is logged is decided where it is logged; nothing here adds request content. The request
line (`service.requests`) names the route template, never the raw path, and no log line carries
image bytes, file names or header values other than the request ID.
"""

from __future__ import annotations

import re
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware
from pythonjsonlogger.core import RESERVED_ATTRS
from starlette.types import ASGIApp

REQUEST_ID_HEADER = "X-Request-ID"
# Accepts UUIDs, nginx's $request_id, W3C trace IDs and the like; anything else is replaced.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

TEXT_FORMAT = "%(asctime)s %(levelname)-7s [%(correlation_id)s] %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(correlation_id)s %(message)s"
# uvicorn adds a coloured copy of some messages; it has no place in a JSON line.
JSON_RESERVED = [*RESERVED_ATTRS, "color_message"]
LOGGERS = ("service", "uvicorn", "asgi_correlation_id")


def valid_request_id(value: str) -> bool:
    return REQUEST_ID.fullmatch(value) is not None


def with_request_ids(app: ASGIApp) -> ASGIApp:
    """Takes the request's X-Request-ID (or makes one), echoes it on the answer and keeps it
    for the log lines and problem bodies of that request."""
    return CorrelationIdMiddleware(
        app, header_name=REQUEST_ID_HEADER, validator=valid_request_id
    )


def formatter(log_format: str) -> dict[str, Any]:
    if log_format == "json":
        return {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": {
                "asctime": "time", "levelname": "level", "name": "logger",
                "correlation_id": "request_id",
            },
            "reserved_attrs": JSON_RESERVED,
            "timestamp": False,
        }
    return {"format": TEXT_FORMAT}


def logging_config(level: str, log_format: str = "text") -> dict[str, Any]:
    """A `logging.config.dictConfig` for the service and uvicorn: one handler on stderr."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "default",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    loggers: dict[str, Any] = {
        name: {"handlers": ["default"], "level": level.upper(), "propagate": False}
        for name in LOGGERS
    }
    # uvicorn's own access line shows the raw path and the client's address; the service
    # writes its own request line (service.requests) instead.
    loggers["uvicorn.access"] = {"handlers": [], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {
                "()": "asgi_correlation_id.CorrelationIdFilter", "default_value": "-"
            }
        },
        "formatters": {"default": formatter(log_format)},
        "handlers": {"default": handler},
        "loggers": loggers,
    }

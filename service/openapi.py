"""Print the app's OpenAPI document, or write or check openapi/openapi.json.

    python -m service.openapi            # print
    python -m service.openapi --write    # regenerate openapi/openapi.json
    python -m service.openapi --check    # exit 1 when openapi/openapi.json is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from service.app import create_app
from service.config import Settings

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def openapi_document() -> str:
    # Default settings, whatever the environment says: the document must not vary by machine.
    settings = Settings.model_construct(**{
        name: field.get_default(call_default_factory=True)
        for name, field in Settings.model_fields.items()
    })
    return json.dumps(create_app(settings).openapi(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.openapi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write the document to --path")
    parser.add_argument("--check", action="store_true", help="fail when --path differs")
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    document = openapi_document()
    if args.write:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(document)
    elif args.check:
        current = args.path.read_text() if args.path.is_file() else ""
        if current != document:
            print(f"{args.path} is stale: run python -m service.openapi --write", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(document)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

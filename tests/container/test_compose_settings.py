"""The container files agree with the service (no Docker needed): every setting of
service/config.py is reachable through docker-compose.yml's environment, nothing there is
unknown to the service, the settings table in the docs lists the same names, and the
healthcheck command is written once, in the Dockerfile."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from service.config import Settings

REPO = Path(__file__).resolve().parents[2]
SETTING_NAME = re.compile(r"`?(MRI_[A-Z0-9_]+)`?")


def settings_variables() -> set[str]:
    return {f"MRI_{name.upper()}" for name in Settings.model_fields}


def compose_file(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / name).read_text())
    return loaded


def test_every_setting_is_reachable_through_compose() -> None:
    environment = compose_file("docker-compose.yml")["services"]["api"]["environment"]
    assert set(environment) == settings_variables()


def test_ci_override_sets_only_known_settings() -> None:
    environment = compose_file("docker-compose.ci.yml")["services"]["api"]["environment"]
    assert set(environment) <= settings_variables()


def test_dockerfile_sets_only_known_settings() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert set(re.findall(r"\b(MRI_[A-Z0-9_]+)=", dockerfile)) <= settings_variables()


def test_healthcheck_command_is_written_once_in_the_dockerfile() -> None:
    dockerfile = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*? CMD (\[.*\])\s*$", dockerfile, re.MULTILINE)
    assert match, "no exec-form HEALTHCHECK in the Dockerfile"
    assert "/health/ready" in " ".join(json.loads(match.group(1)))
    for name in ("docker-compose.yml", "docker-compose.ci.yml"):
        # Compose may tune the timing; the command stays the image's.
        healthcheck = compose_file(name)["services"]["api"].get("healthcheck", {})
        assert "test" not in healthcheck, name


def documented_settings() -> set[str]:
    """MRI_* names in the first column of a Markdown table in README.md."""
    names: set[str] = set()
    for line in (REPO / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells:
            match = SETTING_NAME.fullmatch(cells[0])
            if match:
                names.add(match.group(1))
    return names


def test_settings_table_lists_what_compose_passes() -> None:
    documented = documented_settings()
    environment = compose_file("docker-compose.yml")["services"]["api"]["environment"]
    assert documented == set(environment)

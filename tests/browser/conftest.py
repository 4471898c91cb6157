"""Browser test fixtures: headless Chromium (Debian's `chromium`) driven with Playwright's
Python API, against a real `python -m service` process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from accessibility import axe_script
from server_process import service_process

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def require(available: bool, reason: str) -> None:
    """Missing tools fail the run in CI (CI=true) and skip it on a developer's machine."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def playwright_api() -> Any:
    require(Path(CHROMIUM).is_file(), "chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright Python package is not installed (pip install playwright)")
    with sync_playwright() as api:
        yield api


@pytest.fixture(scope="module")
def server_url(exported_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:
    log = tmp_path_factory.mktemp("browser-server") / "server.log"
    with service_process(exported_model_dir, log) as server:
        yield server.url


@pytest.fixture
def page(playwright_api: Any, tmp_path: Path) -> Iterator[Any]:
    context = playwright_api.chromium.launch_persistent_context(
        user_data_dir=str(tmp_path / "chromium-profile"),  # fresh profile per test
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
    )
    try:
        yield context.pages[0] if context.pages else context.new_page()
    finally:
        context.close()


@pytest.fixture
def offline_page(playwright_api: Any, server_url: str, tmp_path: Path) -> Iterator[Any]:
    """A page whose browser can reach this server and nothing else (as on a hospital network
    without internet): names resolve nowhere and any other request is aborted and recorded."""
    context = playwright_api.chromium.launch_persistent_context(
        user_data_dir=str(tmp_path / "chromium-offline"),
        executable_path=CHROMIUM,
        headless=True,
        args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
    )
    blocked: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server_url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    page = context.pages[0] if context.pages else context.new_page()
    page.blocked_requests = blocked
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save their screenshots: MRI_BROWSER_ARTEFACTS, else a temporary
    folder; named at the end of the run so a developer can look at them."""
    configured = os.environ.get("MRI_BROWSER_ARTEFACTS")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("browser-artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    ARTEFACT_FOLDERS.append(folder)
    return folder


ARTEFACT_FOLDERS: list[Path] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for folder in ARTEFACT_FOLDERS:
        terminalreporter.write_line(f"browser test screenshots: {folder}")


@pytest.fixture(scope="session")
def axe_source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """axe-core's browser script, fetched from the npm registry (never committed); cached in
    pytest's cache, or for this session only when the cache plugin is off."""
    cache = getattr(request.config, "cache", None)
    folder = tmp_path_factory.mktemp("axe-core") if cache is None else cache.mkdir("axe-core")
    try:
        return axe_script(Path(str(folder)))
    except OSError as error:  # urllib's URLError included: no way to the registry
        require(False, f"axe-core cannot be fetched from the npm registry: {error}")
        raise

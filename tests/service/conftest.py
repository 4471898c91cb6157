"""Service test fixtures: apps built from the exported test model, entered with TestClient so
the lifespan (background model load, warm-up, batcher) really runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings

ClientFactory = Callable[..., Any]


@contextmanager
def running_client(
    settings: Settings, wait: bool = True, raise_server_exceptions: bool = True,
    app_hook: Callable[[FastAPI], None] | None = None,
) -> Iterator[TestClient]:
    app = create_app(settings)
    if app_hook is not None:
        app_hook(app)
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        if wait:
            assert app.state.runtime.wait_until_loaded(120), "model did not load in time"
        yield client


@pytest.fixture
def make_client(exported_model_dir: Path) -> Iterator[ClientFactory]:
    """`with make_client(max_pixels=100) as client:` an app on the test model, ready.

    The test model has an input gate; apps run it in `report` mode unless a test asks for
    another, so that the many synthetic shapes the API tests send (rectangles, blanks, tiny
    images) are answered. test_api_gate.py tests `enforce`, the service's default."""

    def factory(
        wait: bool = True, raise_server_exceptions: bool = True,
        app_hook: Callable[[FastAPI], None] | None = None, **overrides: Any,
    ) -> Any:
        overrides.setdefault("model_dir", exported_model_dir)
        overrides.setdefault("input_gate", "report")
        # gc.freeze() is process-wide: in a test run that builds many apps it would keep every
        # dead app's cyclic garbage alive. The tests that check it turn it on themselves.
        overrides.setdefault("gc_freeze", False)
        # Freezing the graph after ready costs each app seconds of CPU in the background; the
        # tests that check it (test_service_graph_freezing.py, test_no_skew.py) turn it on.
        overrides.setdefault("freeze_graph", False)
        return running_client(
            Settings(**overrides), wait, raise_server_exceptions, app_hook
        )

    yield factory


@pytest.fixture
def client(make_client: ClientFactory) -> Iterator[TestClient]:
    with make_client() as ready_client:
        assert ready_client.get("/health/ready").status_code == 200
        yield ready_client


@pytest.fixture
def png(sample_images: dict[str, bytes]) -> bytes:
    return sample_images["png_L"]

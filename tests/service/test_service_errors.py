"""Domain errors in the core, HTTP at the edge: the core modules know no status code, every
domain error has one mapping to HTTP, and one function counts rejected inputs."""

from __future__ import annotations

import ast
import inspect
from http import HTTPStatus
from pathlib import Path

import pytest

from service import errors
from service.errors import NotBrainMRI, QueueFull, ServiceError, Unauthenticated
from service.problems import STATUS_BY_ERROR, to_problem

SERVICE = Path(__file__).resolve().parents[2] / "service"
CORE_MODULES = ("images.py", "runtime.py", "model.py", "batching.py", "errors.py", "metrics.py")
HTTP_MODULES = ("fastapi", "starlette", "service.problems", "service.deps", "service.limits",
                "service.routes", "service.app", "service.http_metrics", "service.http_server",
                "service.security", "service.logs")
STATUS_CODES = {status.value for status in HTTPStatus}


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_modules_know_nothing_of_http(module: str) -> None:
    tree = ast.parse((SERVICE / module).read_text())
    leaks = {
        name for name in imported_modules(tree)
        if any(name == http or name.startswith(http + ".") for http in HTTP_MODULES)
    }
    assert not leaks, f"{module} imports the HTTP layer: {sorted(leaks)}"
    statuses = [
        node.value for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and type(node.value) is int
        and node.value in STATUS_CODES and node.value >= 200
    ]
    assert not statuses, f"{module} mentions HTTP statuses {statuses}"
    assert "HTTPStatus" not in (SERVICE / module).read_text()


def domain_errors() -> list[type[ServiceError]]:
    return [
        cls for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, ServiceError) and cls is not ServiceError
    ]


def test_every_domain_error_has_a_status_and_its_own_reason() -> None:
    for cls in domain_errors():
        assert any(base in STATUS_BY_ERROR for base in cls.__mro__), cls
    reasons = [cls.reason for cls in domain_errors() if cls.reason != "queue_full"]
    assert len(reasons) == len(set(reasons)), "two errors share a reason"


def test_not_brain_mri_is_a_422_with_the_gate_figures() -> None:
    problem = to_problem(NotBrainMRI(score=-20.5, threshold=-12.25), retry_after_seconds=2)
    body = problem.to_body("/predict")
    assert problem.status == 422 and body["type"].endswith(":not_brain_mri")
    assert (body["brain_mri_score"], body["brain_mri_threshold"]) == (-20.5, -12.25)
    assert not problem.headers


def test_temporary_refusals_say_when_to_retry() -> None:
    problem = to_problem(QueueFull(), retry_after_seconds=7)
    assert (problem.status, problem.headers) == (503, {"Retry-After": "7"})
    unauthenticated = to_problem(Unauthenticated("X-API-Key"), retry_after_seconds=7)
    assert unauthenticated.status == 401
    assert unauthenticated.headers == {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}


def test_rejected_inputs_are_counted_in_one_place() -> None:
    counting = [
        path.relative_to(SERVICE).as_posix() for path in sorted(SERVICE.rglob("*.py"))
        if "rejected_inputs.labels" in path.read_text()
    ]
    assert counting == ["problems.py"]

"""Reading deploy/kubernetes without a cluster: Kustomize's rendering for the subset of it these
kustomizations use, and JSON-schema validation with the schemas kubernetes-validate ships."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "deploy" / "kubernetes"
# What the renderer below understands; a kustomization using anything else fails the tests
# instead of being rendered wrongly.
KUSTOMIZATION_KEYS = frozenset({"apiVersion", "kind", "resources", "components"})
# The oldest Kubernetes the manifests promise to work on, and the newest the package knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def read_kustomization(folder: Path) -> dict[str, Any]:
    (kustomization,) = load_documents(folder / "kustomization.yaml")
    unknown = set(kustomization) - KUSTOMIZATION_KEYS
    assert not unknown, f"{folder}: kustomization keys the test renderer ignores: {unknown}"
    return kustomization


def render(folder: Path) -> list[dict[str, Any]]:
    """`kustomize build folder` for kustomizations made of resources and components only: the
    listed files' documents and the listed folders' renderings, in order."""
    kustomization = read_kustomization(folder)
    documents: list[dict[str, Any]] = []
    for entry in [*kustomization.get("resources", []), *kustomization.get("components", [])]:
        path = (folder / entry).resolve()
        documents += render(path) if path.is_dir() else load_documents(path)
    return documents


def referenced_files(folder: Path) -> set[Path]:
    """Every file a kustomization (and those it reaches) reads, kustomization.yaml included."""
    kustomization = read_kustomization(folder)
    files = {(folder / "kustomization.yaml").resolve()}
    for entry in [*kustomization.get("resources", []), *kustomization.get("components", [])]:
        path = (folder / entry).resolve()
        files |= referenced_files(path) if path.is_dir() else {path}
    return files


def schema_folder(version: str) -> Any:
    return (importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
            / f"v{version}-local-strict")


def definition_validator(definition: str, version: str) -> jsonschema.Draft202012Validator:
    """A strict validator for one Kubernetes type (e.g. io.k8s.api.core.v1.PodSpec), for the
    Kubernetes objects that custom resources embed."""
    definitions = json.loads((schema_folder(version) / "_definitions.json").read_text())
    registry: Registry[Any] = Resource.from_contents(definitions) @ Registry()
    schema = {"$ref": f"{DEFINITIONS_ID}#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def problems(validator: jsonschema.Draft202012Validator, value: Any) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in validator.iter_errors(value)
    ]


def container(document: dict[str, Any]) -> dict[str, Any]:
    """The serving container of a Deployment or of an InferenceService's predictor."""
    pod = document["spec"]["template"]["spec"] if document["kind"] == "Deployment" else (
        document["spec"]["predictor"]
    )
    assert len(pod["containers"]) == 1, "one process per pod: one container"
    serving: dict[str, Any] = pod["containers"][0]
    return serving


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {entry["name"]: entry["value"] for entry in container.get("env", [])}

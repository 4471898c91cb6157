"""deploy/kubernetes, checked without a cluster.

- Built-in kinds (Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget,
  NetworkPolicy) are validated strictly (unknown fields are errors) against the Kubernetes
  schemas that kubernetes-validate ships, for the oldest supported and the newest version.
- Custom resources have no schema in that package. The InferenceService's predictor is a
  Kubernetes PodSpec plus KServe's component fields (KServe's CustomPredictor inlines
  corev1.PodSpec): the PodSpec part is validated strictly against the PodSpec schema, the rest
  against the list of KServe's fields. The ServiceMonitor's selector is validated as a Kubernetes
  LabelSelector and its endpoints against the fields the Prometheus Operator defines.
- Beyond shape: the pieces agree with each other, with the image (Dockerfile) and with the service
  (probe paths are its routes, every MRI_* variable is one of its settings and parses).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate
import pytest
from manifest_helpers import (
    KUBERNETES,
    KUBERNETES_VERSIONS,
    REPO,
    container,
    definition_validator,
    env_of,
    problems,
    referenced_files,
    render,
)

from service.app import create_app
from service.config import Settings

BASE_KINDS = ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
              "NetworkPolicy"]
KUSTOMIZATIONS = ["base", "overlays/monitoring", "kserve"]
# KServe v1beta1 ComponentExtensionSpec: the predictor's fields that are not PodSpec fields.
KSERVE_COMPONENT_FIELDS = {
    "minReplicas": int, "maxReplicas": int, "scaleTarget": int, "scaleMetric": str,
    "containerConcurrency": int, "timeout": int, "canaryTrafficPercent": int,
    "labels": dict, "annotations": dict, "logger": dict, "batcher": dict,
    "deploymentStrategy": dict,
}
SERVICEMONITOR_ENDPOINT_FIELDS = {
    "port": str, "path": str, "interval": str, "scrapeTimeout": str, "scheme": str,
    "honorLabels": bool,
}
DURATION = re.compile(r"^\d+(ms|s|m|h)$")


def by_kind(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = [document["kind"] for document in documents]
    assert len(kinds) == len(set(kinds)), kinds
    return {document["kind"]: document for document in documents}


@pytest.fixture(scope="module")
def base() -> dict[str, dict[str, Any]]:
    return by_kind(render(KUBERNETES / "base"))


@pytest.fixture(scope="module")
def inference_service() -> dict[str, Any]:
    (document,) = render(KUBERNETES / "kserve")
    return document


def image_user_and_port() -> tuple[int, int]:
    dockerfile = (REPO / "Dockerfile").read_text()
    users = re.findall(r"^USER (\d+):\d+$", dockerfile, re.MULTILINE)
    port = re.search(r"MRI_PORT=(\d+)", dockerfile)
    assert users and port
    return int(users[0]), int(port.group(1))


def route_paths() -> set[str]:
    """The service's routes, as its OpenAPI document lists them."""
    return set(create_app().openapi()["paths"])


def test_every_manifest_file_belongs_to_a_kustomization() -> None:
    files = {path.resolve() for path in KUBERNETES.rglob("*.yaml")}
    reached = set().union(*(referenced_files(KUBERNETES / name) for name in KUSTOMIZATIONS))
    assert files == reached


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_base_is_valid_kubernetes(base: dict[str, dict[str, Any]], version: str) -> None:
    assert sorted(base) == sorted(BASE_KINDS)
    for document in base.values():
        kubernetes_validate.validate(document, version, strict=True)


def test_a_misspelt_field_is_caught(base: dict[str, dict[str, Any]]) -> None:
    """The validation above has teeth: one misspelt field fails it, in a built-in kind and in
    a PodSpec embedded in a custom resource."""
    broken = copy.deepcopy(base["Deployment"])
    container(broken)["startupProbe"]["periodSecond"] = 2
    with pytest.raises(kubernetes_validate.ValidationError, match="periodSecond"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
    pod_spec = definition_validator("io.k8s.api.core.v1.PodSpec", KUBERNETES_VERSIONS[-1])
    assert problems(pod_spec, broken["spec"]["template"]["spec"]) != []


def test_the_pieces_select_the_same_pods(base: dict[str, dict[str, Any]]) -> None:
    deployment = base["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert base["Service"]["spec"]["selector"] == labels
    assert base["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels
    assert base["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"] == labels
    target = base["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    # The budget lets one pod go, and the autoscaler never goes below two: one stays up.
    assert base["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    assert base["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    # The Service's, the policy's and the ServiceMonitor's named port is the container's.
    port_names = {port["name"] for port in container(deployment)["ports"]}
    assert base["Service"]["spec"]["ports"][0]["targetPort"] in port_names
    assert base["NetworkPolicy"]["spec"]["ingress"][0]["ports"][0]["port"] in port_names
    assert base["NetworkPolicy"]["spec"]["egress"] == []  # the service calls nothing


@pytest.mark.parametrize("kind", ["Deployment", "InferenceService"])
def test_the_pod_matches_the_image_and_the_service(
    base: dict[str, dict[str, Any]], inference_service: dict[str, Any], kind: str
) -> None:
    document = base["Deployment"] if kind == "Deployment" else inference_service
    pod = document["spec"]["template"]["spec"] if kind == "Deployment" else (
        document["spec"]["predictor"]
    )
    serving = container(document)
    uid, port = image_user_and_port()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    assert serving["securityContext"]["readOnlyRootFilesystem"] is True
    assert serving["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # HOME=/tmp in the image: with a read-only root, /tmp must be a volume.
    tmp = next(m for m in serving["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp["name"])
    assert [p["containerPort"] for p in serving["ports"]] == [port]

    # Probes: startup and readiness on readiness, liveness on liveness, all real routes.
    paths = route_paths()
    assert serving["startupProbe"]["httpGet"]["path"] in {"/health/ready", "/v2/health/ready"}
    assert serving["readinessProbe"]["httpGet"]["path"] == serving["startupProbe"]["httpGet"][
        "path"]
    assert serving["livenessProbe"]["httpGet"]["path"] in {"/health/live", "/v2/health/live"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert serving[probe]["httpGet"]["path"] in paths, probe

    # Every MRI_* variable is a setting of the service, and its value parses.
    settings_env = {k: v for k, v in env_of(serving).items() if k.startswith("MRI_")}
    fields = {name[len("MRI_"):].lower(): value for name, value in settings_env.items()}
    assert set(fields) <= set(Settings.model_fields), fields
    settings = Settings(**fields)

    # The pod is given longer to stop than it needs: the preStop pause, then the drain.
    pause = int(serving["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + settings.graceful_shutdown_seconds

    # One whole CPU, requested and the limit alike (the figures in docs/deploy.md were measured
    # on one CPU), and TensorFlow's thread pools sized to it.
    resources = serving["resources"]
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == "1"
    assert settings.tf_intra_op_threads == settings.tf_inter_op_threads == 1


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_inference_service_is_a_custom_oip_v2_predictor(
    base: dict[str, dict[str, Any]], inference_service: dict[str, Any], version: str
) -> None:
    isvc = inference_service
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert set(isvc["spec"]) == {"predictor"}
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in {
        "RawDeployment", "Serverless"}
    predictor = isvc["spec"]["predictor"]
    component = {key: value for key, value in predictor.items() if key in KSERVE_COMPONENT_FIELDS}
    for key, value in component.items():
        assert isinstance(value, KSERVE_COMPONENT_FIELDS[key]), key
    assert component["scaleMetric"] in {"cpu", "memory", "concurrency", "rps"}
    assert 1 <= component["minReplicas"] <= component["maxReplicas"]
    pod_spec = {key: value for key, value in predictor.items() if key not in component}
    validator = definition_validator("io.k8s.api.core.v1.PodSpec", version)
    assert problems(validator, pod_spec) == []

    serving = container(isvc)
    assert serving["name"] == "kserve-container"
    # KServe reads a custom predictor's protocol from this variable (v1 when it is absent).
    assert env_of(serving)["PROTOCOL"] == "v2"
    # The same image, settings and resources as the plain Deployment.
    plain = container(base["Deployment"])
    assert serving["image"] == plain["image"]
    assert {k: v for k, v in env_of(serving).items() if k != "PROTOCOL"} == env_of(plain)
    assert serving["resources"] == plain["resources"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_monitoring_overlay_adds_a_servicemonitor_for_the_service(version: str) -> None:
    documents = by_kind(render(KUBERNETES / "overlays" / "monitoring"))
    assert sorted(documents) == sorted([*BASE_KINDS, "ServiceMonitor"])
    monitor = documents.pop("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) == {"selector", "endpoints"}
    selector = definition_validator("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", version)
    assert problems(selector, monitor["spec"]["selector"]) == []
    assert monitor["spec"]["selector"]["matchLabels"] == documents["Service"]["metadata"]["labels"]
    (endpoint,) = monitor["spec"]["endpoints"]
    for key, value in endpoint.items():
        assert isinstance(value, SERVICEMONITOR_ENDPOINT_FIELDS[key]), key
    assert endpoint["port"] == documents["Service"]["spec"]["ports"][0]["name"]
    assert endpoint["path"] in route_paths()
    assert DURATION.match(endpoint["interval"]) and DURATION.match(endpoint["scrapeTimeout"])

"""GET /metrics: counters and histograms move by exactly what the requests did."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from service_helpers import scrape, value


def test_counters_move_by_the_right_amounts(
    client: TestClient, sample_images: dict[str, bytes]
) -> None:
    before = scrape(client)
    labels = []
    for name in ("png_L", "jpeg_RGB", "tiff_I16"):
        response = client.post("/predict", files={"file": (name, sample_images[name])})
        labels.append(response.json()["label"])
    client.post("/predict", files={"file": ("x", b"nope")})
    client.post("/predict", files={"file": ("x", b"")})
    batch = client.post("/predict/batch", files=[
        ("files", ("a", sample_images["png_RGB"])), ("files", ("b", b"nope")),
    ])
    labels.append(batch.json()["results"][0]["label"])
    client.get("/no/such/page/123")
    client.delete("/predict")
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "mri_http_requests_total"
    assert delta(requests, route="/predict", method="POST", status="200") == 3
    assert delta(requests, route="/predict", method="POST", status="415") == 1
    assert delta(requests, route="/predict", method="POST", status="422") == 1
    assert delta(requests, route="/predict/batch", method="POST", status="200") == 1
    assert delta(requests, route="<unmatched>", method="GET", status="404") == 1
    assert delta(requests, route="/predict", method="DELETE", status="405") == 1
    assert not any(
        "/no/such" in str(key) for key in after
    ), "raw paths must never become label values"
    assert delta(requests, route="/metrics", method="GET", status="200") == 1  # the 1st scrape

    for label in ("tumor", "healthy"):
        assert delta("mri_predictions_total", label=label) == labels.count(label)
    assert delta("mri_rejected_inputs_total", reason="unsupported_format") == 2
    assert delta("mri_rejected_inputs_total", reason="empty_file") == 1
    assert delta("mri_batch_size_sum") == 4  # four images reached the model
    assert delta("mri_queue_wait_seconds_count") == 4
    assert 1 <= delta("mri_model_inference_seconds_count") <= 4
    assert delta("mri_http_request_duration_seconds_count", route="/predict", method="POST") == 5


def test_model_version_and_process_metrics(client: TestClient) -> None:
    metrics = scrape(client)
    assert value(metrics, "mri_model_info", name="test-model", version="1") == 1
    assert value(metrics, "mri_model_ready") == 1
    assert value(metrics, "process_resident_memory_bytes") > 0
    assert ("python_info", ()) not in metrics or True
    assert any(name == "process_cpu_seconds_total" for name, _ in metrics)
    assert value(metrics, "mri_queue_depth") == 0


def test_rejections_before_routing_are_counted(make_client: Any, png: bytes) -> None:
    with make_client(max_upload_bytes=100) as client:
        before = scrape(client)
        response = client.post("/predict", files={"file": ("a", png + b"\0" * 70_000)})
        assert response.status_code == 413
        after = scrape(client)
        key = ("mri_http_requests_total",
               (("method", "POST"), ("route", "/predict"), ("status", "413")))
        assert after.get(key, 0) - before.get(key, 0) == 1
        reason = ("mri_rejected_inputs_total", (("reason", "body_too_large"),))
        assert after.get(reason, 0) - before.get(reason, 0) == 1


def test_not_ready_metrics(make_client: Any, tmp_path: Any, png: bytes) -> None:
    with make_client(model_dir=tmp_path) as client:
        for _ in range(3):
            assert client.get("/health/ready").status_code == 503
        client.post("/predict", files={"file": ("a", png)})
        metrics = scrape(client)
        # Probes are not rejected inputs; the refused prediction is.
        assert value(metrics, "mri_rejected_inputs_total", reason="not_ready") == 1
        assert value(metrics, "mri_http_requests_total", route="/health/ready", method="GET",
                     status="503") == 3
        assert value(metrics, "mri_model_ready") == 0
        assert not any(name == "mri_model_info" for name, _ in metrics)

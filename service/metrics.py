"""The Prometheus objects, in one registry per app (service/http_metrics.py fills the HTTP ones)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# The gate's score is 0 at the training slices' median and -1 at their 99th percentile; real
# slices sit above about -3, other images far below (docs/model-report.md).
GATE_SCORE_BUCKETS = (-1000.0, -100.0, -30.0, -10.0, -5.0, -4.0, -3.0, -2.5, -2.0, -1.5, -1.0,
                      -0.5, 0.0, 0.5, 1.0)
# From a generation-0 collection (tens of microseconds) to an unfrozen full one (~0.25 s).
GC_PAUSE_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter(
            "mri_http_requests", "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"], registry=r,
        )
        self.request_seconds = Histogram(
            "mri_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response.",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "mri_queue_wait_seconds", "Time an image waited in the queue before its batch ran.",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.model_seconds = Histogram(
            "mri_model_inference_seconds", "Time of one model call (one batch).",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.batch_size = Histogram(
            "mri_batch_size", "Images per model call.", buckets=BATCH_SIZE_BUCKETS, registry=r,
        )
        self.predictions = Counter(
            "mri_predictions", "Images answered, by predicted label.", ["label"], registry=r,
        )
        self._add_explain_metrics(r)
        self.gc_pause_seconds = Histogram(
            "mri_gc_pause_seconds",
            "Time of one garbage collection (every thread waits), by generation.",
            ["generation"], buckets=GC_PAUSE_BUCKETS, registry=r,
        )
        self.rejected_inputs = Counter(
            "mri_rejected_inputs",
            "Uploads or requests refused before reaching the model, by reason.",
            ["reason"], registry=r,
        )
        self.brain_mri_scores = Histogram(
            "mri_brain_mri_score",
            "The input gate's brain-MRI score of every image the model scored (refused or "
            "not); a shift of this distribution means the uploads have changed.",
            buckets=GATE_SCORE_BUCKETS, registry=r,
        )
        self.queue_depth = Gauge(
            "mri_queue_depth", "Images waiting for the model.", registry=r,
        )
        self._add_model_metrics(r)

    def _add_model_metrics(self, r: CollectorRegistry) -> None:
        """The served model's state: which version, ready or not, frozen or not, reloads."""
        self.model_info = Gauge(
            "mri_model_info", "The loaded model: 1 for the served name and version.",
            ["name", "version"], registry=r,
        )
        self.model_reload_failures = Counter(
            "mri_model_reload_failures", "New model versions refused (they did not load or "
            "warm up); the previous version kept serving.", registry=r,
        )
        self.model_ready = Gauge(
            "mri_model_ready", "1 when the model is loaded and warmed up, else 0.", registry=r,
        )
        self.model_graph_frozen = Gauge(
            "mri_model_graph_frozen", "1 once the served version's signatures run frozen "
            "(MRI_FREEZE_GRAPH; swapped in after ready), else 0.", registry=r,
        )

    def _add_explain_metrics(self, r: CollectorRegistry) -> None:
        """POST /explain's own metrics: explanations never enter the batcher."""
        self.explain_seconds = Histogram(
            "mri_explain_inference_seconds",
            "Time of one call of the explain signature (one image, Grad-CAM included).",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.explanations = Counter(
            "mri_explanations", "Images explained by /explain, by predicted label.", ["label"],
            registry=r,
        )

    def observe_batch(self, size: int, queue_waits: Sequence[float], model_seconds: float) -> None:
        self.batch_size.observe(size)
        self.model_seconds.observe(model_seconds)
        for wait in queue_waits:
            self.queue_wait_seconds.observe(wait)

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data

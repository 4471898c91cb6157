"""The service's moving parts and their life: model loading in the background, the batcher,
the upload-checking threads, and whether the service is ready."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from service.batching import MicroBatcher
from service.config import Settings
from service.images import PreparedImage, prepare_image
from service.metrics import Metrics
from service.model import (
    ModelLoadError,
    ModelRunner,
    configure_tensorflow_threads,
    find_version_dir,
    read_model_card,
)
from service.problems import Problem

logger = logging.getLogger("service")


class Runtime:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.state = "loading"
        self.reason = "the model is loading"
        self.runner: ModelRunner | None = None
        self.batcher: MicroBatcher | None = None
        self.decode_pool = ThreadPoolExecutor(
            settings.decode_threads, thread_name_prefix="upload-check"
        )
        self._loaded = threading.Event()
        self._loader: threading.Thread | None = None

    # Start-up and shut-down.

    def start_loading(self) -> None:
        """Load, warm up and start the batcher in a thread: the server answers meanwhile."""
        self._loader = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self._loader.start()

    def wait_until_loaded(self, timeout: float) -> bool:
        """Block until loading has ended (ready or failed); True when it ended in time."""
        return self._loaded.wait(timeout)

    def _load(self) -> None:
        started = time.perf_counter()
        settings = self.settings
        try:
            version_dir = find_version_dir(settings.model_dir, settings.model_name)
            read_model_card(version_dir)  # fail fast on a bad card, before importing TensorFlow
            configure_tensorflow_threads(settings.tf_intra_op_threads, settings.tf_inter_op_threads)
            runner = ModelRunner.load(version_dir)
            # Every batch size the batcher can form: each is a new shape for the graph, whose
            # kernels' caches would otherwise grow over the first few thousand requests.
            runner.warm_up(range(1, settings.max_batch_size + 1))
            batcher = MicroBatcher(
                runner.predict,
                max_batch_size=settings.max_batch_size,
                max_wait_s=settings.max_wait_ms / 1000.0,
                queue_size=settings.queue_size,
                observer=self.metrics,
            )
            batcher.start()
        except Exception as error:
            self.state = "failed"
            self.reason = f"the model could not be loaded: {error}"
            logger.error(
                "model not loaded; the service stays live and not ready: %s",
                error if isinstance(error, ModelLoadError) else repr(error),
            )
        else:
            self.runner, self.batcher = runner, batcher
            card = runner.card
            self.metrics.model_info.labels(card.name, str(card.version)).set(1)
            self.metrics.model_ready.set(1)
            self.state, self.reason = "ready", "ready"
            logger.info(
                "model %s version %d loaded from %s and warmed up in %.1f s",
                card.name, card.version, version_dir, time.perf_counter() - started,
            )
        finally:
            self._loaded.set()

    def shutdown(self) -> None:
        """Finish queued work, then stop the worker threads."""
        self.metrics.model_ready.set(0)
        if self.batcher is not None:
            self.batcher.stop()
        self.decode_pool.shutdown(wait=True, cancel_futures=True)

    # What the routes need.

    def not_ready_problem(self) -> Problem:
        return Problem(
            503,
            "not_ready",
            f"The service is not ready: {self.reason}.",
            headers={"Retry-After": str(self.settings.retry_after_seconds)},
            state=self.state,
        )

    def ready_parts(self) -> tuple[ModelRunner, MicroBatcher]:
        """The runner and batcher, or a 503 problem when the model is not ready."""
        if self.state != "ready" or self.runner is None or self.batcher is None:
            raise self.not_ready_problem()
        return self.runner, self.batcher

    def queue_full_problem(self) -> Problem:
        return Problem(
            503,
            "queue_full",
            "The service is at capacity (the queue is full); retry shortly.",
            headers={"Retry-After": str(self.settings.retry_after_seconds)},
        )

    async def prepare(self, data: bytes) -> PreparedImage:
        """Check and convert one upload off the event loop; raise `Problem` when it fails."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.decode_pool, prepare_image, data, self.settings.max_pixels
        )

"""The service's moving parts and their life: model loading in the background, the batcher,
the upload-checking threads, and whether the service is ready."""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from model_contract import CardError, LayoutError, find_version_dir, read_card
from model_contract.dicom import is_dicom
from service.batching import MicroBatcher
from service.config import Settings
from service.decode_budget import DecodeBudget
from service.dicom_input import prepare_dicom
from service.errors import ModelLoadError, ModelNotReady
from service.images import PreparedImage, decode_cost, prepare_image
from service.metrics import Metrics
from service.model import ModelRunner, configure_tensorflow_threads

logger = logging.getLogger("service")
# Failures whose message says it all; anything else is logged with its type.
EXPLAINED_LOAD_ERRORS = (ModelLoadError, LayoutError, CardError)


def public_reason(error: Exception, model_dir: Path) -> str:
    """Why loading failed, as readiness answers say it: server paths become MRI_MODEL_DIR and
    an unexplained error (a TensorFlow or Python internal) is not shown; the log has it all."""
    if not isinstance(error, EXPLAINED_LOAD_ERRORS):
        return "the model could not be loaded (the service log says why)"
    message = str(error)
    for form in sorted({str(model_dir.resolve()), str(model_dir)}, key=len, reverse=True):
        message = message.replace(form, "MRI_MODEL_DIR")
    return f"the model could not be loaded: {message}"


def prepare_upload(data: bytes, max_pixels: int) -> list[PreparedImage]:
    """DICOM is recognised from its bytes (the `DICM` marker), never from the file name."""
    if is_dicom(data):
        return prepare_dicom(data, max_pixels)
    return [prepare_image(data, max_pixels)]


def upload_cost(data: bytes, max_pixels: int) -> int:
    """The bytes decoding this upload may hold at its peak. For DICOM the header is not read
    here: 16 bytes per byte of the file covers uncompressed 16-bit pixels and their float
    conversion (a compressed file may take more)."""
    if is_dicom(data):
        return 16 * len(data)
    return decode_cost(data, max_pixels)


class RuntimeState(enum.StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class Runtime:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.state = RuntimeState.LOADING
        self.reason = "the model is loading"
        self.runner: ModelRunner | None = None
        self.failure: str | None = None  # why loading failed, for the log only
        self.batcher: MicroBatcher | None = None
        self.decode_pool = ThreadPoolExecutor(
            settings.decode_threads, thread_name_prefix="upload-check"
        )
        self.decode_budget = DecodeBudget(settings.decode_memory_bytes)
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
            read_card(version_dir)  # fail fast on a bad card, before importing TensorFlow
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
            self.state = RuntimeState.FAILED
            self.failure = str(error) if isinstance(error, EXPLAINED_LOAD_ERRORS) else repr(error)
            self.reason = public_reason(error, settings.model_dir)
            logger.error("model not loaded: %s", self.failure)
        else:
            self.runner, self.batcher = runner, batcher
            card = runner.card
            self.metrics.model_info.labels(card.name, str(card.version)).set(1)
            self.metrics.model_ready.set(1)
            self.state, self.reason = RuntimeState.READY, "ready"
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

    def ready_parts(self) -> tuple[ModelRunner, MicroBatcher]:
        """The runner and batcher, or ModelNotReady saying why."""
        if self.state is not RuntimeState.READY or self.runner is None or self.batcher is None:
            raise ModelNotReady(self.reason, self.state.value)
        return self.runner, self.batcher

    async def prepare(self, data: bytes) -> list[PreparedImage]:
        """Check and convert one upload off the event loop (one image, or one per frame of a
        DICOM file); raise InvalidInput when it fails. The header is read first, and the
        decode waits for its bytes in the decode budget."""
        loop = asyncio.get_running_loop()
        max_pixels = self.settings.max_pixels
        cost = await loop.run_in_executor(self.decode_pool, upload_cost, data, max_pixels)
        async with self.decode_budget.reserve(cost):
            return await loop.run_in_executor(
                self.decode_pool, prepare_upload, data, max_pixels
            )

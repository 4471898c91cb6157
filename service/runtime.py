"""The service's moving parts and their life: model loading in the background, the batcher,
the upload-checking threads, whether the service is ready, and new model versions swapped in.

A model version is a unit: its runner and its own batcher, loaded and warmed up before it serves.
A new version (found by polling the model folder, or on POST /admin/reload) is loaded beside the
serving one; the swap replaces the (runner, batcher) pair in one assignment, so a request gets the
old pair or the new one, never a mix, and every answer names the version that computed it. The old
batcher keeps taking what requests already holding it submit, and is stopped (its queue finished)
RETIRE_AFTER_SECONDS later. A version that fails to load or warm up is refused: logged, counted in
mri_model_reload_failures_total, and the serving version goes on.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from model_contract import CardError, LayoutError, ModelCard, find_version_dir, read_card
from model_contract.dicom import is_dicom
from service.batching import MicroBatcher
from service.config import Settings
from service.decode_budget import DecodeBudget
from service.dicom_input import prepare_dicom
from service.errors import ModelLoadError, ModelNotReady, ModelReloadFailed, QueueFull
from service.gate import gate_status
from service.gc_tuning import GCPauseObserver, refreeze_long_lived_heap
from service.heap_release import release_free_heap
from service.images import PreparedImage, decode_cost, prepare_image
from service.metrics import Metrics
from service.model import Explanation, ModelAnswer, ModelRunner, configure_tensorflow_threads
from service.operating_point_choice import available, configured_is_usable

logger = logging.getLogger("service")
# Failures whose message says it all; anything else is logged with its type.
EXPLAINED_LOAD_ERRORS = (ModelLoadError, LayoutError, CardError)
# How long a replaced version's batcher still takes work from requests that got it before the
# swap (and were still checking their upload); far longer than an upload check takes.
RETIRE_AFTER_SECONDS = 30.0
# How long shutting down waits for a graph freezing in progress (seconds on 2 cores).
FREEZING_TIMEOUT_S = 60.0


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


def wanted_version_dir(settings: Settings) -> Path:
    """The version to serve: MRI_MODEL_VERSION when set, else the highest in the folder."""
    latest = find_version_dir(settings.model_dir, settings.model_name)
    if settings.model_version is None:
        return latest
    pinned = latest.parent / str(settings.model_version)
    if not pinned.is_dir():
        raise LayoutError(f"MRI_MODEL_VERSION is {settings.model_version}, but {pinned} does "
                          "not exist")
    return pinned


def load_version(
    version_dir: Path, settings: Settings, metrics: Metrics
) -> tuple[ModelRunner, MicroBatcher[ModelAnswer]]:
    """Load a version, warm it up and start its batcher: ready to serve when this returns."""
    read_card(version_dir)  # fail fast on a bad card, before the SavedModel loads
    runner = ModelRunner.load(version_dir)
    # Every batch size the batcher can form: each is a new shape for the graph, whose kernels'
    # caches would otherwise grow over the first few thousand requests.
    runner.warm_up(range(1, settings.max_batch_size + 1))
    batcher = MicroBatcher(
        runner.predict,
        max_batch_size=settings.max_batch_size,
        max_wait_s=settings.max_wait_ms / 1000.0,
        queue_size=settings.queue_size,
        observer=metrics,
        busy_wait_s=settings.busy_wait_ms / 1000.0,
    )
    batcher.start()
    return runner, batcher


class Runtime:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.state = RuntimeState.LOADING
        self.reason = "the model is loading"
        self._active: tuple[ModelRunner, MicroBatcher[ModelAnswer]] | None = None
        self.failure: str | None = None  # why loading failed, for the log only
        self.decode_pool = ThreadPoolExecutor(
            settings.decode_threads, thread_name_prefix="upload-check"
        )
        self.decode_budget = DecodeBudget(settings.decode_memory_bytes)
        self.explain_pool = ThreadPoolExecutor(
            settings.explain_threads, thread_name_prefix="explain"
        )
        self._explains_pending = 0  # changed on the event loop only
        self._loaded = threading.Event()
        self._stopping = threading.Event()
        self._reload_lock = threading.Lock()
        self._retired: list[MicroBatcher[ModelAnswer]] = []
        self._refused: set[Path] = set()
        self._freezers: list[threading.Thread] = []
        self._gc_observer = GCPauseObserver(metrics.gc_pause_seconds)

    @property
    def runner(self) -> ModelRunner | None:
        return self._active[0] if self._active is not None else None

    @property
    def batcher(self) -> MicroBatcher[ModelAnswer] | None:
        return self._active[1] if self._active is not None else None

    # Start-up and shut-down.

    def start_loading(self) -> None:
        """Load, warm up and start the batcher in a thread: the server answers meanwhile. Then,
        when MRI_MODEL_POLL_SECONDS is set, keep looking for new versions."""
        self._gc_observer.install()
        threading.Thread(target=self._load_then_watch, name="model-loader", daemon=True).start()

    def wait_until_loaded(self, timeout: float) -> bool:
        """Block until loading has ended (ready or failed); True when it ended in time."""
        return self._loaded.wait(timeout)

    def _load_then_watch(self) -> None:
        self._load()
        if self.state is RuntimeState.READY and self.runner is not None:
            self._start_freezing(self.runner)
        poll = self.settings.model_poll_seconds
        while poll > 0 and self.state is RuntimeState.READY and not self._stopping.wait(poll):
            try:
                self.reload()
            except ModelReloadFailed:
                pass  # logged and counted; the serving version goes on

    def _load(self) -> None:
        started = time.perf_counter()
        settings = self.settings
        try:
            version_dir = wanted_version_dir(settings)
            read_card(version_dir)  # fail fast on a bad card, before importing TensorFlow
            configure_tensorflow_threads(settings.tf_intra_op_threads, settings.tf_inter_op_threads)
            runner, batcher = load_version(version_dir, settings, self.metrics)
        except Exception as error:
            self.state = RuntimeState.FAILED
            self.failure = str(error) if isinstance(error, EXPLAINED_LOAD_ERRORS) else repr(error)
            self.reason = public_reason(error, settings.model_dir)
            logger.error("model not loaded: %s", self.failure)
        else:
            self._activate(runner, batcher)
            # Last, once the model, its traced functions and every batch shape exist.
            frozen_objects = self._release_garbage()
            if settings.gc_freeze:
                logger.info("%d long-lived objects frozen out of garbage collection",
                            frozen_objects)
            self.metrics.model_ready.set(1)
            self.state, self.reason = RuntimeState.READY, "ready"
            logger.info(
                "model %s version %d loaded from %s and warmed up in %.1f s; input gate: %s",
                runner.card.name, runner.card.version, version_dir, time.perf_counter() - started,
                gate_status(runner.card, settings.input_gate),
            )
        finally:
            self._loaded.set()

    def _release_garbage(self) -> int:
        """After a version loads, freezes its graph or retires: one full collection frees its
        garbage (with MRI_GC_FREEZE, everything alive is then frozen again: a single pause),
        and the C heap's free pages go back to the operating system. Returns how many objects
        are frozen out of garbage collection."""
        if self.settings.gc_freeze:
            frozen = refreeze_long_lived_heap()
        else:
            gc.collect()
            frozen = 0
        release_free_heap()
        return frozen

    def _start_freezing(self, runner: ModelRunner) -> None:
        """With MRI_FREEZE_GRAPH, swap the runner's frozen signatures in, in a thread, while it
        serves as exported: freezing takes seconds, and readiness does not wait for it."""
        self.metrics.model_graph_frozen.set(0)
        if self.settings.freeze_graph:
            thread = threading.Thread(target=self._freeze_graph, args=(runner,),
                                      name="graph-freezer", daemon=True)
            self._freezers = [t for t in self._freezers if t.is_alive()] + [thread]
            thread.start()

    def wait_for_freezing(self, timeout: float) -> bool:
        """Block until every graph freezing started so far has ended; True when they did."""
        for thread in list(self._freezers):
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self._freezers)

    def _freeze_graph(self, runner: ModelRunner) -> None:
        started = time.perf_counter()
        try:
            frozen = runner.freeze(range(1, self.settings.max_batch_size + 1))
        except Exception as error:  # the exported signatures go on serving
            logger.warning("model graph left as exported: the frozen one failed its warm-up "
                           "(%r)", error)
            return
        self._release_garbage()  # frees the SavedModel the frozen graphs replace
        if runner is self.runner:
            self.metrics.model_graph_frozen.set(1 if frozen else 0)
        logger.info("model %s version %d: graph %s in %.1f s", runner.card.name,
                    runner.card.version, "frozen" if frozen else "left as exported",
                    time.perf_counter() - started)

    def shutdown(self) -> None:
        """Finish queued work, then stop the worker threads."""
        self._stopping.set()
        self.metrics.model_ready.set(0)
        self.wait_for_freezing(FREEZING_TIMEOUT_S)  # it may still be warming up the model
        with self._reload_lock:  # a reload in progress finishes first
            batchers = [*self._retired, *([self.batcher] if self.batcher else [])]
        for batcher in batchers:
            batcher.stop()
        self.decode_pool.shutdown(wait=True, cancel_futures=True)
        self._gc_observer.remove()
        self.explain_pool.shutdown(wait=True, cancel_futures=True)

    # New versions.

    def _activate(self, runner: ModelRunner, batcher: MicroBatcher[ModelAnswer]) -> None:
        """Serve this version from now on (one assignment); retire the previous one."""
        previous, self._active = self._active, (runner, batcher)
        card = runner.card
        self.metrics.model_info.labels(card.name, str(card.version)).set(1)
        _check_operating_point(card, self.settings.operating_point)
        if previous is None:
            return
        old_card, old_batcher = previous[0].card, previous[1]
        if (old_card.name, old_card.version) != (card.name, card.version):
            self.metrics.model_info.remove(old_card.name, str(old_card.version))
        self._retired.append(old_batcher)
        timer = threading.Timer(RETIRE_AFTER_SECONDS, self._retire, [old_batcher])
        timer.daemon = True
        timer.start()

    def _retire(self, batcher: MicroBatcher[ModelAnswer]) -> None:
        batcher.stop()  # finishes what is queued first
        if batcher in self._retired:
            self._retired.remove(batcher)
        self._release_garbage()  # the replaced version, and the new one's load garbage

    def reload(self, retry_refused: bool = False) -> bool:
        """Swap in the wanted version if it is not the one serving; True when it swapped. A
        version that fails is refused (ModelReloadFailed) and not tried again by polling."""
        with self._reload_lock:
            runner, _ = self.ready_parts()
            try:
                version_dir = wanted_version_dir(self.settings)
            except LayoutError as error:
                raise self._refuse(None, error) from None
            if version_dir == runner.version_dir:
                return False
            if version_dir in self._refused and not retry_refused:
                raise ModelReloadFailed(str(version_dir), runner.card.version, "refused before")
            started = time.perf_counter()
            try:
                new_runner, new_batcher = load_version(version_dir, self.settings, self.metrics)
            except Exception as error:
                raise self._refuse(version_dir, error) from None
            self._activate(new_runner, new_batcher)
            self._start_freezing(new_runner)
            logger.info("model %s version %d loaded from %s and warmed up in %.1f s; it now "
                        "answers instead of version %d", new_runner.card.name,
                        new_runner.card.version, version_dir, time.perf_counter() - started,
                        runner.card.version)
            return True

    def _refuse(self, version_dir: Path | None, error: Exception) -> ModelReloadFailed:
        runner, _ = self.ready_parts()
        if version_dir is not None:
            self._refused.add(version_dir)
        self.metrics.model_reload_failures.inc()
        why = str(error) if isinstance(error, EXPLAINED_LOAD_ERRORS) else repr(error)
        where = str(version_dir or self.settings.model_dir)
        logger.error("model version at %s refused; version %d keeps serving: %s",
                     where, runner.card.version, why)
        return ModelReloadFailed(where, runner.card.version, why)

    # What the routes need.

    def ready_parts(self) -> tuple[ModelRunner, MicroBatcher[ModelAnswer]]:
        """The serving version's runner and batcher, or ModelNotReady saying why."""
        active = self._active
        if self.state is not RuntimeState.READY or active is None:
            raise ModelNotReady(self.reason, self.state.value)
        return active

    async def prepare(self, data: bytes) -> list[PreparedImage]:
        """Check and convert one upload off the event loop (one image, or one per frame of a
        DICOM file); raise InvalidInput when it fails. The header is read first, and the
        decode needs its bytes in the decode budget: taken in the same hand-off to the
        upload-check thread when there is room, else waited for on the event loop."""
        loop = asyncio.get_running_loop()
        max_pixels = self.settings.max_pixels
        checked = await loop.run_in_executor(self.decode_pool, self._prepare_if_room, data,
                                             max_pixels)
        if isinstance(checked, list):
            return checked
        async with self.decode_budget.reserve(checked):
            return await loop.run_in_executor(
                self.decode_pool, prepare_upload, data, max_pixels
            )

    def _prepare_if_room(self, data: bytes, max_pixels: int) -> list[PreparedImage] | int:
        """In an upload-check thread: the converted upload when the budget has room for its
        decode now, else the bytes it needs (to wait for on the event loop)."""
        cost = upload_cost(data, max_pixels)
        if not self.decode_budget.try_take(cost):
            return cost
        try:
            return prepare_upload(data, max_pixels)
        finally:
            self.decode_budget.give_back(cost)

    async def explain(self, runner: ModelRunner, canonical: bytes) -> Explanation:
        """Run the explain signature off the event loop, on the explain threads; QueueFull
        when MRI_QUEUE_SIZE explanations are already waiting or running."""
        if self._explains_pending >= self.settings.queue_size:
            raise QueueFull()
        self._explains_pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.explain_pool, self._timed_explain, runner,
                                              canonical)
        finally:
            self._explains_pending -= 1

    def _timed_explain(self, runner: ModelRunner, canonical: bytes) -> Explanation:
        started = time.perf_counter()
        explanation = runner.explain(canonical)
        self.metrics.explain_seconds.observe(time.perf_counter() - started)
        return explanation


def _check_operating_point(card: ModelCard, configured: str | None) -> None:
    if not configured_is_usable(card, configured):
        logger.warning(
            "MRI_OPERATING_POINT=%s is not one of the model's operating points (%s); "
            "requests naming none get the card's default", configured,
            ", ".join(available(card)) or "none",
        )

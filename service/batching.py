"""Grouping concurrent requests into model batches: a bounded queue and one worker thread.

Callers on the event loop put images in the queue and await a future each; the worker thread
takes up to `max_batch_size` images (waiting at most `max_wait` after the oldest one arrived
for others to join), calls the model once, and hands each result back to its caller's loop
with `call_soon_threadsafe`. The model never runs on the event loop. An idle worker takes a
lone request at once when `max_wait` is 0; under load batches fill while the model is busy.
With `max_wait` 0 and a `busy_wait`, a batch that follows a full one (the service is saturated)
waits up to `busy_wait` after its oldest image for others: at 32 requests in flight this stops
the model from running a batch of the one or two images that came back first while the rest
are still in their upload checks, and a request arriving at a service that is not saturated
still goes in at once.
The batcher does not look inside the per-image results (`ResultT`, the model's answer).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from service.errors import BatcherStopped, QueueFull

logger = logging.getLogger("service")

ResultT = TypeVar("ResultT")
# One result per image, in order (a list, or any sequence such as a NumPy array).
PredictFn = Callable[[Sequence[bytes]], Sequence[ResultT]]
__all__ = ["BatchObserver", "BatcherStopped", "MicroBatcher", "PredictFn", "QueueFull"]


class BatchObserver(Protocol):
    def observe_batch(self, size: int, queue_waits: Sequence[float], model_seconds: float) -> None:
        ...


@dataclass(eq=False)
class _Request(Generic[ResultT]):
    image: bytes
    future: asyncio.Future[ResultT]
    loop: asyncio.AbstractEventLoop
    enqueued_at: float = field(default_factory=time.perf_counter)


def _settle(
    outcomes: list[tuple[asyncio.Future[ResultT], ResultT | None, BaseException | None]]
) -> None:
    # Runs on the callers' loop, once per batch. A caller that went away (cancelled) is skipped.
    for future, value, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]  # None only with an error


class MicroBatcher(Generic[ResultT]):
    def __init__(
        self,
        predict: PredictFn[ResultT],
        *,
        max_batch_size: int,
        max_wait_s: float,
        queue_size: int,
        observer: BatchObserver | None = None,
        busy_wait_s: float = 0.0,
    ) -> None:
        if max_batch_size < 1 or queue_size < 1 or max_wait_s < 0:
            raise ValueError("max_batch_size and queue_size must be >= 1, max_wait_s >= 0")
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.queue_size = queue_size
        self._observer = observer
        self._pending: deque[_Request[ResultT]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.busy_wait_s = busy_wait_s
        self._last_was_full = False  # the previous batch had max_batch_size images

    @property
    def depth(self) -> int:
        """Images waiting for the model (not counting the batch it is running)."""
        return len(self._pending)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="model-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Finish what is queued, then end the worker thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def submit_many(self, images: Sequence[bytes]) -> list[asyncio.Future[ResultT]]:
        """Queue all images or none (QueueFull); return one future per image, in order."""
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        requests: list[_Request[ResultT]] = [
            _Request(image, loop.create_future(), loop, now) for image in images
        ]
        with self._cond:
            if self._stopping:
                raise BatcherStopped()
            if len(self._pending) + len(requests) > self.queue_size:
                raise QueueFull(
                    f"{len(self._pending)} images are queued; the limit is {self.queue_size}"
                )
            self._pending.extend(requests)
            self._cond.notify()
        return [request.future for request in requests]

    async def predict(self, image: bytes) -> ResultT:
        (future,) = self.submit_many([image])
        return await future

    # The worker thread.

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._process(batch)
            except Exception:  # never let one bad batch end the worker
                logger.exception("model worker failed on a batch of %d", len(batch))

    def _next_batch(self) -> list[_Request[ResultT]] | None:
        with self._cond:
            while not self._pending:
                if self._stopping:
                    return None
                self._cond.wait()
            wait = self.max_wait_s or (self.busy_wait_s if self._last_was_full else 0.0)
            if wait > 0:
                deadline = self._pending[0].enqueued_at + wait
                while len(self._pending) < self.max_batch_size and not self._stopping:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            size = min(len(self._pending), self.max_batch_size)
            self._last_was_full = size == self.max_batch_size
            return [self._pending.popleft() for _ in range(size)]

    def _process(self, batch: list[_Request[ResultT]]) -> None:
        # A cancelled caller (client gone) costs no model time; the others are unaffected.
        live = [request for request in batch if not request.future.cancelled()]
        if not live:
            return
        started = time.perf_counter()
        outcomes: list[tuple[ResultT | None, BaseException | None]]
        try:
            results = self._predict([request.image for request in live])
            outcomes = [(result, None) for result in results]
        except Exception as batch_error:
            if len(live) == 1:
                outcomes = [(None, batch_error)]
            else:
                # One undecodable image fails the whole call: retry one by one, so it fails
                # alone and the rest of the batch still gets answers.
                outcomes = [self._predict_one(request.image) for request in live]
        model_seconds = time.perf_counter() - started
        if self._observer is not None:
            waits = [started - request.enqueued_at for request in live]
            self._observer.observe_batch(len(live), waits, model_seconds)
        # One wake-up per event loop for the whole batch, not one per image.
        by_loop: dict[
            asyncio.AbstractEventLoop,
            list[tuple[asyncio.Future[ResultT], ResultT | None, BaseException | None]],
        ] = {}
        for request, (value, error) in zip(live, outcomes, strict=True):
            by_loop.setdefault(request.loop, []).append((request.future, value, error))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the caller's loop has closed
                pass

    def _predict_one(self, image: bytes) -> tuple[ResultT | None, BaseException | None]:
        try:
            return self._predict([image])[0], None
        except Exception as error:
            return None, error

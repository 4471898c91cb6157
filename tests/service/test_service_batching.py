"""service/batching.py: batches form, results reach the right callers, a cancelled caller or a
bad image does not break a batch, the queue is bounded, and the model runs off the loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from service.batching import BatcherStopped, MicroBatcher, QueueFull


class RecordingModel:
    """P(tumor) = the image's number / 1000; records batches and the thread that ran them."""

    def __init__(self, delay: float = 0.0, bad: bytes | None = None) -> None:
        self.delay = delay
        self.bad = bad
        self.batches: list[list[bytes]] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, images: Sequence[bytes]) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        assert self.gate.wait(10)
        self.batches.append(list(images))
        time.sleep(self.delay)
        if self.bad is not None and self.bad in images:
            raise ValueError("undecodable")
        return np.array([int(image) / 1000 for image in images], dtype=np.float32)


class Observed:
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.waits: list[float] = []

    def observe_batch(self, size: int, queue_waits: Sequence[float], model_seconds: float) -> None:
        self.sizes.append(size)
        self.waits.extend(queue_waits)
        assert model_seconds >= 0


async def until_inside_model(model: RecordingModel, batcher: MicroBatcher) -> None:
    """Wait until the worker has taken the queued work and entered the model."""
    for _ in range(1000):
        if model.threads and batcher.depth == 0:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the worker never entered the model")


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_concurrent_requests_are_batched_and_answered_correctly() -> None:
    model, observed = RecordingModel(delay=0.02), Observed()
    batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=0.005, queue_size=100,
                           observer=observed)
    batcher.start()

    async def main() -> list[float]:
        return await asyncio.gather(*(batcher.predict(str(i).encode()) for i in range(50)))

    try:
        answers = run(main())
    finally:
        batcher.stop()
    assert answers == pytest.approx([i / 1000 for i in range(50)])
    assert max(len(batch) for batch in model.batches) == 8
    assert len(model.batches) < 50  # requests really shared model calls
    assert sum(observed.sizes) == 50 and len(observed.waits) == 50
    assert model.threads == {"model-worker"}


def seconds_for_a_lone_request(batcher: MicroBatcher) -> float:
    """Start the batcher, time one request sent alone, stop the batcher."""
    batcher.start()

    async def main() -> float:
        started = time.perf_counter()
        await batcher.predict(b"5")
        return time.perf_counter() - started

    try:
        elapsed = run(main())
    finally:
        batcher.stop()
    assert isinstance(elapsed, float)
    return elapsed


def test_a_lone_request_does_not_wait_when_max_wait_is_zero() -> None:
    model = RecordingModel()
    slow = MicroBatcher(model, max_batch_size=32, max_wait_s=1.0, queue_size=10)
    assert seconds_for_a_lone_request(slow) >= 0.95  # the contrast: a lone request waits max_wait
    batcher = MicroBatcher(model, max_batch_size=32, max_wait_s=0.0, queue_size=10)
    # generous for a loaded CI machine; a wait would be ~1 s
    assert seconds_for_a_lone_request(batcher) < 0.5


def test_max_wait_bounds_the_wait_for_a_fuller_batch() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model, max_batch_size=32, max_wait_s=0.05, queue_size=10)
    elapsed = seconds_for_a_lone_request(batcher)
    assert 0.04 <= elapsed < 0.5


def test_cancelled_caller_is_skipped_and_the_batch_still_answers() -> None:
    model = RecordingModel()
    model.gate.clear()  # hold the worker on the first batch
    batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=0.0, queue_size=100)
    batcher.start()

    async def main() -> list[object]:
        first = asyncio.ensure_future(batcher.predict(b"1"))
        await until_inside_model(model, batcher)  # the worker holds b"1" alone
        doomed = asyncio.ensure_future(batcher.predict(b"2"))
        kept = [asyncio.ensure_future(batcher.predict(str(i).encode())) for i in (3, 4)]
        await asyncio.sleep(0.01)
        doomed.cancel()  # the client went away while queued
        model.gate.set()
        return await asyncio.gather(first, doomed, *kept, return_exceptions=True)

    try:
        results = run(main())
    finally:
        batcher.stop()
    assert results[0] == pytest.approx(0.001)
    assert isinstance(results[1], asyncio.CancelledError)
    assert results[2:] == pytest.approx([0.003, 0.004])
    assert [b"2"] not in model.batches and all(b"2" not in batch for batch in model.batches)


def test_caller_cancelled_during_the_model_call_does_not_break_the_others() -> None:
    model = RecordingModel(delay=0.1)
    batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=0.01, queue_size=100)
    batcher.start()

    async def main() -> list[object]:
        tasks = [asyncio.ensure_future(batcher.predict(str(i).encode())) for i in range(4)]
        await asyncio.sleep(0.05)  # the batch is running
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        results = run(main())
    finally:
        batcher.stop()
    assert isinstance(results[1], asyncio.CancelledError)
    assert [results[0], results[2], results[3]] == pytest.approx([0.0, 0.002, 0.003])


def test_a_bad_image_fails_alone() -> None:
    model = RecordingModel(bad=b"13")
    batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=0.02, queue_size=100)
    batcher.start()

    async def main() -> list[object]:
        images = [b"11", b"12", b"13", b"14"]
        futures = batcher.submit_many(images)
        return await asyncio.gather(*futures, return_exceptions=True)

    try:
        results = run(main())
    finally:
        batcher.stop()
    assert results[:2] == pytest.approx([0.011, 0.012])
    assert isinstance(results[2], ValueError)
    assert results[3] == pytest.approx(0.014)


def test_queue_is_bounded_and_submissions_are_all_or_nothing() -> None:
    model = RecordingModel()
    model.gate.clear()
    batcher = MicroBatcher(model, max_batch_size=1, max_wait_s=0.0, queue_size=3)
    batcher.start()

    async def main() -> None:
        running = batcher.submit_many([b"1"])
        await until_inside_model(model, batcher)  # taken by the worker, no longer queued
        queued = batcher.submit_many([b"2", b"3"])
        assert batcher.depth == 2
        with pytest.raises(QueueFull):
            batcher.submit_many([b"4", b"5"])  # room for one only: none is queued
        assert batcher.depth == 2
        queued += batcher.submit_many([b"6"])
        model.gate.set()
        assert await asyncio.gather(*running, *queued) == pytest.approx([0.001, 0.002,
                                                                          0.003, 0.006])

    try:
        run(main())
    finally:
        batcher.stop()


def test_stop_finishes_queued_work_then_refuses_more() -> None:
    model = RecordingModel(delay=0.01)
    batcher = MicroBatcher(model, max_batch_size=2, max_wait_s=0.0, queue_size=100)
    batcher.start()

    async def main() -> list[float]:
        futures = batcher.submit_many([b"1", b"2", b"3", b"4", b"5"])
        await asyncio.to_thread(batcher.stop)
        with pytest.raises(BatcherStopped):
            batcher.submit_many([b"6"])
        return list(await asyncio.gather(*futures))

    assert run(main()) == pytest.approx([0.001, 0.002, 0.003, 0.004, 0.005])


def test_event_loop_stays_responsive_while_the_model_runs() -> None:
    model = RecordingModel(delay=0.3)
    batcher = MicroBatcher(model, max_batch_size=4, max_wait_s=0.0, queue_size=10)
    batcher.start()

    async def main() -> int:
        task = asyncio.ensure_future(batcher.predict(b"7"))
        ticks = 0
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return ticks

    try:
        assert run(main()) >= 5  # the loop kept ticking during the 0.3 s model call
    finally:
        batcher.stop()


def test_after_a_full_batch_the_next_waits_for_more_and_a_lone_request_never_does() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model, max_batch_size=2, max_wait_s=0.0, queue_size=100,
                           busy_wait_s=1.0)
    batcher.start()

    async def main() -> tuple[float, list[int]]:
        started = time.perf_counter()
        await batcher.predict(b"1")  # nothing was full before: answered at once
        alone = time.perf_counter() - started
        await asyncio.gather(batcher.predict(b"2"), batcher.predict(b"3"))  # a full batch
        first = asyncio.ensure_future(batcher.predict(b"4"))
        await asyncio.sleep(0.05)  # well inside the busy wait: joins 4's batch
        await asyncio.gather(first, batcher.predict(b"5"))
        return alone, [len(batch) for batch in model.batches]

    try:
        alone, sizes = run(main())  # type: ignore[misc]
    finally:
        batcher.stop()
    assert alone < 0.5  # generous for a loaded CI machine; a wait would be ~1 s
    assert sizes[0] == 1 and sizes[-1] == 2 and sum(sizes) == 5
    assert model.batches[-1] == [b"4", b"5"]


def test_no_busy_wait_takes_each_image_as_it_comes() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model, max_batch_size=2, max_wait_s=0.0, queue_size=100)
    batcher.start()

    async def main() -> None:
        await asyncio.gather(batcher.predict(b"2"), batcher.predict(b"3"))
        first = asyncio.ensure_future(batcher.predict(b"4"))
        await asyncio.sleep(0.05)
        await asyncio.gather(first, batcher.predict(b"5"))

    try:
        run(main())
    finally:
        batcher.stop()
    assert [b"4"] in model.batches and [b"5"] in model.batches

"""The decode budget (service/decode_budget.py) and how Runtime.prepare uses it: a decode takes
room in the upload-check thread when there is some (one hand-off), waits on the event loop when
there is none, and room given back from any thread wakes the waiters."""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path

import pytest
from PIL import Image

from service.config import Settings
from service.decode_budget import DecodeBudget
from service.metrics import Metrics
from service.runtime import Runtime, upload_cost

MIB = 1 << 20


def png(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (size, size), 40).save(buffer, format="PNG")
    return buffer.getvalue()


def test_try_take_takes_room_only_when_there_is_some() -> None:
    budget = DecodeBudget(100)
    assert budget.try_take(60)
    assert not budget.try_take(50)
    assert budget.try_take(40)
    assert budget.in_use == 100
    budget.give_back(60)
    assert budget.in_use == 40
    assert budget.try_take(50)


def test_a_decode_larger_than_the_budget_runs_alone() -> None:
    budget = DecodeBudget(100)
    assert budget.try_take(500)  # takes the whole budget, not more
    assert budget.in_use == 100
    assert not budget.try_take(1)
    budget.give_back(500)
    assert budget.in_use == 0


def test_a_waiter_is_woken_by_room_given_back_from_another_thread() -> None:
    async def scenario() -> int:
        budget = DecodeBudget(100)
        assert budget.try_take(80)
        threading.Timer(0.05, budget.give_back, [80]).start()
        async with budget.reserve(50):
            held = budget.in_use
        return held + budget.in_use * 1000

    # 50 held inside the block, none after it.
    assert asyncio.run(asyncio.wait_for(scenario(), 5)) == 50


def test_small_decodes_go_past_a_large_one_waiting() -> None:
    async def scenario() -> list[str]:
        budget = DecodeBudget(100)
        order: list[str] = []
        assert budget.try_take(60)

        async def decode(name: str, nbytes: int) -> None:
            async with budget.reserve(nbytes):
                order.append(name)

        large = asyncio.create_task(decode("large", 90))
        await asyncio.sleep(0.01)
        await decode("small", 30)  # fits beside the 60 taken
        assert not large.done()
        budget.give_back(60)
        await asyncio.wait_for(large, 5)
        return order

    assert asyncio.run(scenario()) == ["small", "large"]


def test_a_cancelled_waiter_leaves_no_room_taken() -> None:
    async def scenario() -> int:
        budget = DecodeBudget(100)
        assert budget.try_take(100)
        waiter = asyncio.create_task(budget.wait_and_take(10))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        budget.give_back(100)
        return budget.in_use

    assert asyncio.run(scenario()) == 0


def runtime(tmp_path: Path, decode_memory: int) -> Runtime:
    settings = Settings(model_dir=tmp_path, decode_memory_bytes=decode_memory, decode_threads=2)
    return Runtime(settings, Metrics())


def test_prepare_decodes_in_one_hand_off_when_there_is_room(tmp_path: Path) -> None:
    service_runtime = runtime(tmp_path, 16 * MIB)
    image = png(64)
    checked = service_runtime._prepare_if_room(image, 10_000)
    assert isinstance(checked, list) and checked[0].width == 64
    assert service_runtime.decode_budget.in_use == 0


def test_prepare_waits_for_room_on_the_loop_when_there_is_none(tmp_path: Path) -> None:
    service_runtime = runtime(tmp_path, 16 * MIB)
    budget = service_runtime.decode_budget
    image = png(512)
    assert budget.try_take(16 * MIB)  # everything taken: the upload must wait
    assert service_runtime._prepare_if_room(image, 10**6) == upload_cost(image, 10**6)

    async def scenario() -> tuple[bool, int]:
        task = asyncio.create_task(service_runtime.prepare(image))
        await asyncio.sleep(0.05)
        waited = not task.done()
        # Given back from another thread, as an upload-check thread does.
        threading.Thread(target=budget.give_back, args=(16 * MIB,)).start()
        prepared = await asyncio.wait_for(task, 5)
        return waited, prepared[0].width

    try:
        assert asyncio.run(scenario()) == (True, 512)
        assert budget.in_use == 0
    finally:
        service_runtime.decode_pool.shutdown()
        service_runtime.explain_pool.shutdown()

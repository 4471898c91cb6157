"""The collector's pauses are measured by generation, and the heap is frozen once ready."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram

from service.gc_tuning import GCPauseObserver, freeze_long_lived_heap, refreeze_long_lived_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def count(histogram: Histogram, generation: str) -> float:
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels == {"generation": generation}:
                return float(sample.value)
    return 0.0


def test_every_collection_is_observed_by_generation() -> None:
    histogram = Histogram("pause", "test", ["generation"], registry=CollectorRegistry())
    observer = GCPauseObserver(histogram)
    observer.install()
    observer.install()  # twice is once
    try:
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
    finally:
        observer.remove()
    assert count(histogram, "2") == 2
    assert count(histogram, "0") >= 1
    assert observer not in gc.callbacks
    gc.collect(2)
    assert count(histogram, "2") == 2


def test_freezing_moves_the_live_heap_out_of_the_collector(unfrozen: None) -> None:
    survivor: list[Any] = [object()]
    survivor.append(survivor)  # a cycle, alive
    frozen = freeze_long_lived_heap()
    assert frozen == gc.get_freeze_count() > 0
    assert gc.is_tracked(survivor)
    assert all(tracked is not survivor for tracked in gc.get_objects(2))


def test_the_service_freezes_once_ready_and_exposes_the_pauses(
    make_client: Any, unfrozen: None
) -> None:
    gc.unfreeze()
    with make_client(gc_freeze=True) as client:
        assert gc.get_freeze_count() > 0
        gc.collect(1)
        text = client.get("/metrics").text
        assert 'mri_gc_pause_seconds_count{generation="1"}' in text
    assert gc.get_freeze_count() > 0


def test_no_freeze_when_turned_off(make_client: Any, unfrozen: None) -> None:
    gc.unfreeze()
    with make_client(gc_freeze=False):
        assert gc.get_freeze_count() == 0


class Node:
    """A stand-in for a replaced model version: an object kept alive only by a cycle."""

    def __init__(self) -> None:
        self.me = self


def test_refreezing_frees_what_was_frozen_and_has_died_since(unfrozen: None) -> None:
    old = Node()
    alive = weakref.ref(old)
    freeze_long_lived_heap()
    del old
    gc.collect()
    assert alive() is not None  # frozen: no collection looks at it
    # Counts, not equality with get_freeze_count(): another thread may free a frozen object
    # (by reference count) between the two calls.
    assert refreeze_long_lived_heap() > 0 and gc.get_freeze_count() > 0
    assert alive() is None

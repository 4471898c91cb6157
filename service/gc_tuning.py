"""Keeping CPython's cyclic garbage collector off the long-lived heap, and timing what it does.

Once TensorFlow and the model are loaded the process holds several hundred thousand Python
objects that live as long as it does. Left in the collector's generations, each full
(generation-2) collection re-scans all of them and stops every thread that needs the GIL,
event loop included, for a few hundred milliseconds while freeing nothing: the tail latency
of every request in flight. `freeze_long_lived_heap()`, called once after loading and warm-up,
collects once and moves every surviving object into the permanent generation
(`gc.freeze()`), so later collections scan only what requests allocate.

`GCPauseObserver` times every collection through `gc.callbacks` into a Prometheus histogram
by generation, so an operator sees the pauses rather than guessing them from the p99.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

from prometheus_client import Histogram


def freeze_long_lived_heap() -> int:
    """Collect once, then exempt every object alive now from future collections (they are
    the libraries, the model and its traced functions). Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def refreeze_long_lived_heap() -> int:
    """After a model version was replaced: unfreeze (the old version's objects were frozen
    too), collect once, which frees them, and freeze what is alive now."""
    gc.unfreeze()
    return freeze_long_lived_heap()


class GCPauseObserver:
    """Observes each collection's duration (seconds) in `histogram`, labelled by generation.

    Collections run on whichever thread allocated last, one at a time; the start time is
    kept per thread all the same, so a callback can never pair one thread's start with
    another's stop.
    """

    def __init__(self, histogram: Histogram) -> None:
        self._by_generation = {g: histogram.labels(generation=str(g)) for g in range(3)}
        self._local = threading.local()

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._local.started = time.perf_counter()
            return
        started = getattr(self._local, "started", None)
        if started is not None:
            self._local.started = None
            self._by_generation[info["generation"]].observe(time.perf_counter() - started)

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)

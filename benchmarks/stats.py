"""Latency percentiles, in milliseconds, the one way every part of the benchmark reports them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentiles_ms(seconds: Sequence[float], points: Sequence[float]) -> list[float]:
    """Linear-interpolated percentiles of durations given in seconds; NaN when there are none."""
    if not seconds:
        return [float("nan")] * len(points)
    values = np.percentile(np.asarray(seconds, dtype=np.float64) * 1000.0, list(points))
    return [float(value) for value in values]

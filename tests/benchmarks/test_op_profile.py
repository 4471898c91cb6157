"""The op-level profile (benchmarks/op_profile.py) on the tiny exported model: both graphs run
and are traced, the shares add up, and the frozen graph reads no variable where the exported
one reads them on every call."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.op_profile import markdown, op_type, profile
from benchmarks.workload import synthetic


def test_the_exported_and_the_frozen_graph_are_profiled_by_op_type(
    exported_version_dir: Path,
) -> None:
    images = synthetic(4, size=64).images
    exported = profile(exported_version_dir, images, batch_size=2, batches=2, frozen=False)
    frozen = profile(exported_version_dir, images, batch_size=2, batches=2, frozen=True)
    for result in (exported, frozen):
        assert result.images == 4
        rows = result.rows(top=len(result.micros))
        assert sum(share for _, share, _, _ in rows) == pytest.approx(1.0)
        assert any("Conv2D" in op for op, _, _, _ in rows)  # the network ran, traced
        assert "| op type | share |" in markdown(result, top=5)
    assert exported.counts["ReadVariableOp"] > 0
    assert "ReadVariableOp" not in frozen.counts


def test_op_type_reads_the_timeline_label() -> None:
    assert op_type("model/conv/Conv2D = _MklNativeConv2D(x, w)", "model/conv/Conv2D") == \
        "_MklNativeConv2D"
    assert op_type("_SOURCE", "_SOURCE") == "_SOURCE"

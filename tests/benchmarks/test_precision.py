"""The bfloat16 comparison (benchmarks/precision.py) on the tiny exported model: both precisions
run in their own process, float32 is the reference (no difference from itself), and every
threshold of the card gets its count of changed labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.precision import label_changes, main


def test_both_precisions_are_measured_against_float32(
    exported_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--model-dir", str(exported_model_dir), "--max-images", "8",
                 "--max-seconds", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith(("| float32", "| bfloat16"))]
    assert [row.split(" | ")[0] for row in rows] == ["| float32", "| bfloat16"]
    float32 = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert float(float32[1]) > 0 and float(float32[2]) > 0  # batch-1 p50, batch-32 rate
    assert float32[3] == "0.0000"
    assert all(cell == "0 of 8" for cell in float32[4:])
    bfloat16 = [cell.strip() for cell in rows[1].strip("|").split("|")]
    assert 0.0 <= float(bfloat16[3]) <= 1.0
    assert bfloat16[4:] and all(cell.endswith(" of 8") for cell in bfloat16[4:])


def test_a_label_changes_when_the_answer_crosses_the_threshold() -> None:
    reference = np.array([0.10, 0.49, 0.51, 0.90])
    other = np.array([0.12, 0.51, 0.52, 0.40])
    assert label_changes(reference, other, 0.5) == 2
    assert label_changes(reference, reference, 0.5) == 0

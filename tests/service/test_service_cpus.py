"""service/cpus.py: the CPUs the service may use (affinity, capped by a cgroup v2 quota) and
the thread counts its settings take from them by default."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import service.config
from service.config import Settings
from service.cpus import (
    available_cpus,
    cgroup_cpu_quota,
    default_decode_threads,
    default_tf_threads,
)


@pytest.mark.parametrize(("text", "cpus"), [
    ("200000 100000\n", 2), ("150000 100000\n", 2), ("50000 100000\n", 1), ("max 100000\n", None),
    ("", None), ("lots 100000\n", None),
])
def test_the_cgroup_quota_is_rounded_up_to_whole_cpus(
    tmp_path: Path, text: str, cpus: int | None
) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(text)
    assert cgroup_cpu_quota(cpu_max) == cpus


def test_no_cgroup_file_means_no_quota(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(tmp_path / "absent") is None
    assert available_cpus(tmp_path / "absent") == len(os.sched_getaffinity(0))


def test_a_quota_caps_the_affinity_count(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")
    assert available_cpus(cpu_max) == 1
    cpu_max.write_text(f"{1000 * 100000} 100000\n")  # a quota above the CPUs it may run on
    assert available_cpus(cpu_max) == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(("cpus", "threads"), [(0, (1, 1)), (1, (1, 1)), (2, (1, 2)),
                                                 (3, (1, 2)), (8, (4, 2))])
def test_two_ops_at_a_time_each_on_half_the_cpus(cpus: int, threads: tuple[int, int]) -> None:
    assert default_tf_threads(cpus) == threads


def test_upload_check_threads_follow_the_cpus_up_to_four() -> None:
    assert [default_decode_threads(n) for n in (0, 1, 3, 4, 16)] == [1, 1, 3, 4, 4]


def test_settings_default_to_the_available_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TF_INTRA_OP_THREADS", "TF_INTER_OP_THREADS", "DECODE_THREADS"):
        monkeypatch.delenv(f"MRI_{name}", raising=False)
    monkeypatch.setattr(service.config, "available_cpus", lambda: 6)
    settings = Settings()
    assert (settings.tf_intra_op_threads, settings.tf_inter_op_threads) == (3, 2)
    assert settings.decode_threads == 4
    monkeypatch.setattr(service.config, "available_cpus", lambda: 1)
    settings = Settings()
    assert (settings.tf_intra_op_threads, settings.tf_inter_op_threads, settings.decode_threads) \
        == (1, 1, 1)


def test_zero_still_lets_tensorflow_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRI_TF_INTRA_OP_THREADS", "0")
    monkeypatch.setenv("MRI_TF_INTER_OP_THREADS", "0")
    settings = Settings()
    assert (settings.tf_intra_op_threads, settings.tf_inter_op_threads) == (0, 0)

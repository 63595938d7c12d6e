"""CPU threads: the free cores of this process within its cgroup quota, at least one; a number in the config wins."""
from __future__ import annotations

import os
from pathlib import Path

from src.utils import threads


def test_auto_leaves_the_cores_other_processes_keep_busy(monkeypatch) -> None:
    monkeypatch.setattr(threads, "_cpus", lambda: [0, 1])
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    for busy, expected in ((0.1, 2), (1.2, 1), (7.0, 1)):
        monkeypatch.setattr(threads, "busy_cores", lambda busy=busy: busy)
        assert threads.choose_threads("auto") == expected
    assert threads.choose_threads(3) == 3


def test_a_cgroup_quota_caps_the_cores(monkeypatch) -> None:
    """A container with --cpus=2 on a 16-core host: 2 threads, however idle the host is."""
    monkeypatch.setattr(threads, "_cpus", lambda: list(range(16)))
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 2.0)
    assert threads.available_cores() == 2 and threads.choose_threads("auto") == 2
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 0.5)
    assert threads.available_cores() == 1


def test_the_cgroup_quota_is_read_from_v2_and_v1_files(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpu_limit(v1) == 3.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpu_limit(v1) is None
    assert threads.cgroup_cpu_limit(tmp_path / "missing") is None


def test_busy_cores_come_from_psutil_on_this_process_cpus_not_the_load_average(monkeypatch) -> None:
    """One of our two CPUs fully busy over the sample: 1.0, whatever the load average says; CPU 2 is not ours."""
    monkeypatch.setattr(threads, "_cpus", lambda: [0, 1])
    monkeypatch.setattr(os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    monkeypatch.setattr(threads.psutil, "cpu_percent", lambda interval, percpu: [100.0, 0.0, 100.0])
    assert threads.busy_cores() == 1.0
    monkeypatch.setattr(threads, "_cpus", lambda: [1])
    assert threads.busy_cores() == 0.0
    monkeypatch.setattr(threads.psutil, "cpu_percent", lambda interval, percpu: [])
    assert threads.busy_cores() == 5.0  # nothing sampled: the load average


def test_the_real_sample_is_a_share_of_this_process_cpus() -> None:
    busy = threads.busy_cores(sample_s=0.1)
    assert 0.0 <= busy <= len(threads._cpus()) + 1e-6


def test_the_chosen_count_reaches_torch_and_the_worker_pools(monkeypatch) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        assert threads.apply_threads(1) == 1 and torch.get_num_threads() == 1 and threads.worker_threads() == 1
    finally:
        torch.set_num_threads(before)

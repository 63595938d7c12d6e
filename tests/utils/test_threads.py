"""CPU threads: the free cores of this process, at least one; a number in the config wins."""
from __future__ import annotations

import os
from pathlib import Path

from src.utils import threads


def test_auto_leaves_the_cores_other_processes_keep_busy(monkeypatch) -> None:
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    for busy, expected in ((0.1, 2), (1.2, 1), (7.0, 1)):
        monkeypatch.setattr(threads, "busy_cores", lambda busy=busy: busy)
        assert threads.choose_threads("auto") == expected
    assert threads.choose_threads(3) == 3


def _stat(path: Path, cpu0: tuple[int, int], cpu1: tuple[int, int]) -> None:
    """A /proc/stat with two CPUs, each given as (busy user jiffies, idle jiffies)."""
    rows = [f"cpu{i} {b} 0 0 {idle} 0 0 0 0 0 0" for i, (b, idle) in enumerate((cpu0, cpu1))]
    path.write_text(f"cpu {cpu0[0] + cpu1[0]} 0 0 {cpu0[1] + cpu1[1]} 0 0 0 0 0 0\n" + "\n".join(rows) + "\nintr 5\n")


def test_busy_cores_are_sampled_from_proc_stat_not_the_load_average(monkeypatch, tmp_path: Path) -> None:
    """One core fully busy over the sample, the other idle: 1.0, whatever the load average says."""
    stat = tmp_path / "stat"
    _stat(stat, (100, 100), (100, 100))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    monkeypatch.setattr(threads.time, "sleep", lambda s: _stat(stat, (150, 100), (100, 150)))
    assert threads.busy_cores(stat=stat) == 1.0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1})  # only the idle core is ours
    _stat(stat, (100, 100), (100, 100))
    assert threads.busy_cores(stat=stat) == 0.0
    assert threads.busy_cores(stat=tmp_path / "missing") == 5.0  # no /proc/stat: the load average


def test_the_chosen_count_reaches_torch_and_the_worker_pools(monkeypatch) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        assert threads.apply_threads(1) == 1 and torch.get_num_threads() == 1 and threads.worker_threads() == 1
    finally:
        torch.set_num_threads(before)

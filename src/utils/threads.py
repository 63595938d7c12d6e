"""CPU threads for torch and Kiwi: the cores this process may use, fewer when other processes keep them busy.

torch's default (one thread per core) spins every core even when another process already uses
them, which makes a small CPU run several times slower on a busy machine (figures in
docs/BENCHMARKS.md). ``auto`` therefore takes the cores this process may use (its affinity mask,
capped by a cgroup CPU quota such as a container's ``--cpus``) minus what other processes keep busy
on them, at least one. "Busy" is psutil's per-CPU utilisation sampled over half a second while this
process sleeps, so a run started right after another one finished is not held to one thread by
the 1-minute load average that run left behind; where psutil cannot sample it is that load
average. ``model.cpu_threads`` overrides it.
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Optional, Union

import psutil

log = logging.getLogger(__name__)

CGROUP = Path("/sys/fs/cgroup")
_chosen: list[int] = []  # the count applied in this process (read by Kiwi)
_busy: list[float] = []  # the busy cores measured for the last ``auto`` choice (logged)


def _cpus() -> list[int]:
    """The CPU numbers this process may run on (its affinity mask; every CPU where the OS has none)."""
    try:
        return sorted(psutil.Process().cpu_affinity() or []) or list(range(psutil.cpu_count() or 1))
    except (AttributeError, psutil.Error, OSError):  # macOS has no affinity call
        return list(range(psutil.cpu_count() or 1))


def cgroup_cpu_limit(root: Path = CGROUP) -> Optional[float]:
    """The CPU quota of this process's cgroup in cores (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    for folder in (root / "cpu", root / "cpu,cpuacct"):
        try:
            quota_us = int((folder / "cpu.cfs_quota_us").read_text())
            period_us = int((folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    return None


def available_cores() -> int:
    """Cores this process may run on: its CPU set, capped by the cgroup quota (a 1.5-core quota gives 1)."""
    cores = len(_cpus())
    limit = cgroup_cpu_limit()
    return max(1, min(cores, math.floor(limit)) if limit else cores)


def busy_cores(sample_s: float = 0.5) -> float:
    """How many of this process's CPUs others keep busy: sampled while we sleep, else the 1-minute load."""
    cpus = _cpus()
    try:
        percent = psutil.cpu_percent(interval=sample_s, percpu=True)
    except (psutil.Error, OSError, NotImplementedError):
        percent = []
    if percent:
        return sum(percent[i] for i in cpus if i < len(percent)) / 100.0
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def choose_threads(setting: Union[int, str]) -> int:
    """A number as given; ``auto``: the CPUs not already busy with other processes, within the quota (>= 1)."""
    if isinstance(setting, int):
        return setting
    _busy[:] = [busy_cores()]
    free = len(_cpus()) - _busy[0]
    return max(1, min(available_cores(), int(free + 0.5)))


def apply_threads(setting: Union[int, str]) -> int:
    """Set torch's intra-op threads (when torch is used) and remember the count for Kiwi; returns it."""
    threads = choose_threads(setting)
    _chosen[:] = [threads]
    try:
        import torch
    except ImportError:
        return threads
    torch.set_num_threads(threads)
    log.info("CPU threads: %d (%d cores available%s; model.cpu_threads=%s)", threads, available_cores(),
             f", {_busy[0]:.1f} busy with other processes" if _busy and isinstance(setting, str) else "", setting)
    return threads


def worker_threads() -> int:
    """Threads for a worker pool such as Kiwi's: the count chosen for this process, else ``auto``."""
    return _chosen[0] if _chosen else choose_threads("auto")

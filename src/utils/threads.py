"""CPU threads for torch and Kiwi: the cores this process may use, fewer when other processes keep them busy.

torch's default (one thread per core) spins every core even when another process already uses
them, which makes a small CPU run several times slower on a busy machine (figures in
docs/BENCHMARKS.md). ``auto`` therefore takes
the cores in this process's affinity mask minus the load other processes put on them (the 1-minute
load average, measured before our own work starts), at least one. ``model.cpu_threads`` overrides it.
"""
from __future__ import annotations

import logging
import os
from typing import Union

log = logging.getLogger(__name__)

_chosen: list[int] = []  # the count applied in this process (read by Kiwi)


def available_cores() -> int:
    """Cores this process may run on (its affinity mask; cgroup limits are not visible here)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def choose_threads(setting: Union[int, str]) -> int:
    """A number as given; ``auto``: the available cores not already busy with other processes (>= 1)."""
    if isinstance(setting, int):
        return setting
    cores = available_cores()
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


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
             f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "", setting)
    return threads


def worker_threads() -> int:
    """Threads for a worker pool such as Kiwi's: the count chosen for this process, else ``auto``."""
    return _chosen[0] if _chosen else choose_threads("auto")

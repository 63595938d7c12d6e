"""CPU threads for torch and Kiwi: the cores this process may use, fewer when other processes keep them busy.

torch's default (one thread per core) spins every core even when another process already uses
them, which makes a small CPU run several times slower on a busy machine (figures in
docs/BENCHMARKS.md). ``auto`` therefore takes the cores in this process's affinity mask minus what
other processes keep busy on them, at least one. "Busy" is sampled from ``/proc/stat`` over half a
second while this process sleeps, so a run started right after another one finished is not held to
one thread by the 1-minute load average that run left behind; without ``/proc/stat`` it is that load
average. ``model.cpu_threads`` overrides it.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Optional, Union

log = logging.getLogger(__name__)

_chosen: list[int] = []  # the count applied in this process (read by Kiwi)
_busy: list[float] = []  # the busy cores measured for the last ``auto`` choice (logged)


def _cpus() -> set[int]:
    """The CPU numbers this process may run on (its affinity mask; cgroup limits are not visible here)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def available_cores() -> int:
    """Cores this process may run on."""
    return max(1, len(_cpus()))


def _cpu_ticks(stat: Path, cpus: set[int]) -> Optional[tuple[int, int]]:
    """(busy, total) jiffies summed over ``cpus`` from a ``/proc/stat`` file; None when it is unreadable."""
    busy = total = 0
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or not name[3:].isdigit() or int(name[3:]) not in cpus:
            continue
        ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
        total += sum(ticks)
        busy += sum(ticks) - ticks[3] - ticks[4]
    return (busy, total) if total else None


def busy_cores(sample_s: float = 0.5, stat: Path = Path("/proc/stat")) -> float:
    """How many of this process's cores others keep busy: sampled while we sleep, else the 1-minute load."""
    cpus = _cpus()
    before = _cpu_ticks(stat, cpus)
    if before is not None:
        time.sleep(sample_s)
        after = _cpu_ticks(stat, cpus)
        if after is not None and after[1] > before[1]:
            return len(cpus) * (after[0] - before[0]) / (after[1] - before[1])
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def choose_threads(setting: Union[int, str]) -> int:
    """A number as given; ``auto``: the available cores not already busy with other processes (>= 1)."""
    if isinstance(setting, int):
        return setting
    cores = available_cores()
    _busy[:] = [busy_cores()]
    return max(1, min(cores, int(cores - _busy[0] + 0.5)))


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

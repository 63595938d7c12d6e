"""CPU threads: the free cores of this process, at least one; a number in the config wins."""
from __future__ import annotations

import os

from src.utils import threads


def test_auto_leaves_the_cores_other_processes_keep_busy(monkeypatch) -> None:
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert threads.choose_threads("auto") == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 0.0, 0.0))
    assert threads.choose_threads("auto") == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (7.0, 0.0, 0.0))
    assert threads.choose_threads("auto") == 1
    assert threads.choose_threads(3) == 3


def test_the_chosen_count_reaches_torch_and_the_worker_pools(monkeypatch) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        assert threads.apply_threads(1) == 1 and torch.get_num_threads() == 1 and threads.worker_threads() == 1
    finally:
        torch.set_num_threads(before)

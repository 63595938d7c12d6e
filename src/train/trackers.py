"""Which trackers a run reports to (``training.report_to``) and whether wandb runs online, offline or not at all.

Shared by the Trainer's options (``src.train.options.report_to``) and the run's tracking (``src.tracking``).
"""
from __future__ import annotations

import logging
import netrc
import os
import socket
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from src.config import Config
from src.utils.secrets import get_secret

log = logging.getLogger("src.tracking")  # the wandb lines keep the name they were always logged under

WANDB_SERVER = "https://api.wandb.ai"


def trackers(cfg: Config) -> tuple[str, ...]:
    """The trackers ``training.report_to`` names (``none`` names none)."""
    return tuple(t for t in cfg.training.report_to if t != "none")


def wandb_key_present() -> bool:
    """A wandb key in ``WANDB_API_KEY`` or in the netrc file ``wandb login`` writes (for the server's host)."""
    if get_secret("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", WANDB_SERVER)).hostname or ""
    try:
        entry = netrc.netrc(os.environ.get("NETRC") or None).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether the server's port answers (no request is sent)."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "", parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


_own_wandb_dir: Optional[str] = None  # the WANDB_DIR this process set itself (a user's own is never replaced)


def wandb_folder(default: Path) -> Path:
    """Where wandb writes: the user's ``WANDB_DIR`` when set, else ``default`` (the run folder), which then becomes
    ``WANDB_DIR`` so the Trainer's callback agrees (and is replaced by the next run's folder in this process)."""
    global _own_wandb_dir
    given = os.environ.get("WANDB_DIR", "").strip()
    if given and given != _own_wandb_dir:
        return Path(given).expanduser()
    _own_wandb_dir = os.environ["WANDB_DIR"] = str(default)
    return Path(default)


def wandb_mode(wandb_dir: Path) -> str:
    """online, offline or disabled; also set as ``WANDB_MODE`` (and ``WANDB_DIR``, unless the user set it: see
    ``wandb_folder``) so the Trainer's callback agrees."""
    wandb_dir = wandb_folder(wandb_dir)
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode in ("disabled", "offline", "dryrun"):
        return "offline" if mode == "dryrun" else mode
    if not wandb_key_present():
        log.info("wandb: offline (no WANDB_API_KEY and no `wandb login`); upload later with `wandb sync %s`", wandb_dir)
        mode = "offline"
    elif not reachable(os.environ.get("WANDB_BASE_URL", WANDB_SERVER)):
        log.warning("wandb: server unreachable; logging offline to %s (upload later with `wandb sync`)", wandb_dir)
        mode = "offline"
    else:
        mode = "online"
    os.environ["WANDB_MODE"] = mode
    return mode

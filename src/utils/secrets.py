"""Secrets come from the environment or ``.env``; they are never printed, logged or saved."""
from __future__ import annotations

import logging
import os
from typing import Optional

from src.config.resources import CHECKOUT

SECRET_NAMES = ("UPSTAGE_API_KEY", "HF_TOKEN", "WANDB_API_KEY", "OPENAI_API_KEY")


def load_dotenv_once() -> None:
    """Read ``.env`` from the working folder, then the source checkout's root (if any); real env vars win."""
    from dotenv import load_dotenv

    for path in (os.path.join(os.getcwd(), ".env"), *([str(CHECKOUT / ".env")] if CHECKOUT else [])):
        if os.path.isfile(path):
            load_dotenv(path, override=False)


def get_secret(name: str) -> Optional[str]:
    """The secret's value, or None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


class RedactSecrets(logging.Filter):
    """Replace any known secret value that reaches a log record with ``***``."""

    def __init__(self, names: tuple[str, ...] = SECRET_NAMES) -> None:
        super().__init__()
        self.names = names

    def filter(self, record: logging.LogRecord) -> bool:
        values = [v for v in (get_secret(n) for n in self.names) if v and len(v) >= 6]
        if values:
            msg = record.getMessage()
            for v in values:
                msg = msg.replace(v, "***")
            record.msg, record.args = msg, ()
        return True

"""Secrets come from the environment or ``.env``; they are never printed, logged or saved."""
from __future__ import annotations

import json
import logging
import os
import re
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

from src.config.resources import CHECKOUT
from src.utils.errors import UserError

SECRET_NAMES = ("UPSTAGE_API_KEY", "HF_TOKEN", "WANDB_API_KEY", "OPENAI_API_KEY")
_extra_names: list[str] = []  # a config's own key variable (augmentation.api.api_key_env), once known
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REDACTED = "***"


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


def secret_names() -> tuple[str, ...]:
    """The variables whose values are secrets: the known ones and any a config named."""
    return SECRET_NAMES + tuple(n for n in _extra_names if n not in SECRET_NAMES)


def add_secret_name(name: str) -> None:
    """Treat the variable ``name`` as a secret too (redacted in logs, checked by ``check_secrets``)."""
    if name and name not in _extra_names:
        _extra_names.append(name)


def check_secrets(names: Optional[tuple[str, ...]] = None) -> None:
    """UserError naming each secret variable whose value holds a control character (a newline would let the value
    forge an HTTP header and reach a log escaped); the value itself is never shown."""
    bad = [n for n in names or secret_names() if CONTROL.search(get_secret(n) or "")]
    if bad:
        raise UserError(*(f"{n}: the value holds a control character (a newline, tab or similar, e.g. from a pasted "
                          f"or quoted key); set {n} again to the key alone" for n in bad))


def escaped_forms(value: str) -> set[str]:
    """``value`` as it may reach a log: raw, and escaped as Python, JSON or bytes reprs write it."""
    forms = {value, repr(value)[1:-1], json.dumps(value)[1:-1], repr(value.encode("utf-8"))[2:-1],
             value.encode("unicode_escape").decode("ascii")}
    return {f for f in forms if f}


def redact_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***`` (anything else unchanged)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password or not parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{host}"))


class RedactSecrets(logging.Filter):
    """Replace any known secret value (raw or escaped) that reaches a log record with ``***``."""

    def __init__(self, names: Optional[tuple[str, ...]] = None) -> None:
        super().__init__()
        self.names = names

    def filter(self, record: logging.LogRecord) -> bool:
        values = [v for v in (get_secret(n) for n in self.names or secret_names()) if v and len(v) >= 6]
        if values:
            msg = record.getMessage()
            for form in sorted({f for v in values for f in escaped_forms(v)}, key=len, reverse=True):
                msg = msg.replace(form, REDACTED)
            record.msg, record.args = msg, ()
        return True

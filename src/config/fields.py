"""The field helper every config section is written with: a default, one line of help, choices and bounds."""
from __future__ import annotations

from dataclasses import field
from typing import Any, Optional

def opt(default: Any, help: str, choices: Optional[tuple] = None, *, ge: Optional[float] = None,
        gt: Optional[float] = None, le: Optional[float] = None, lt: Optional[float] = None) -> Any:
    """A config field: default, one line of help, optional allowed values and bounds (``ge`` means >=, ...).

    Every float must be finite whatever its bounds; bounds apply to each item of a tuple and are
    skipped for None (an unset optional key).
    """
    meta = {"help": help, "choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def sub(cls: type) -> Any:
    """A nested config section."""
    return field(default_factory=cls, metadata={"help": cls.__doc__ or "", "choices": None})

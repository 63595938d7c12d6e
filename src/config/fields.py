"""The field helper every config section is written with: a default, one line of help, choices and bounds."""
from __future__ import annotations

from dataclasses import field
from typing import Any, Optional

# What a field of the inference section decides (``decides=``): the one declaration that the settings log, the
# manifest, the prediction journals, the stage fingerprints and the training fingerprint derive their key lists from.
GENERATION = "generation"  # read by every engine (src.inference.decoding.DecodingParams holds exactly these)
OUTPUT = "output"          # changes the summaries some other way (prompting, engine, post-processing, candidates)
ENGINE = "engine"          # how they are computed (batching, memory); recorded in the manifest, outputs unchanged


def opt(default: Any, help: str, choices: Optional[tuple] = None, *, ge: Optional[float] = None,
        gt: Optional[float] = None, le: Optional[float] = None, lt: Optional[float] = None,
        decides: Optional[str] = None) -> Any:
    """A config field: default, one line of help, optional allowed values and bounds (``ge`` means >=, ...).

    Every float must be finite whatever its bounds; bounds apply to each item of a tuple and are
    skipped for None (an unset optional key). ``decides`` (GENERATION, OUTPUT or ENGINE) says what an
    inference key decides.
    """
    meta = {"help": help, "choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt, "decides": decides}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def sub(cls: type, decides: Optional[str] = None) -> Any:
    """A nested config section (``decides``: as for ``opt``, for the whole section)."""
    return field(default_factory=cls, metadata={"help": cls.__doc__ or "", "choices": None, "decides": decides})

"""Console + file logging with secret redaction."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from src.utils.secrets import RedactSecrets

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO", log_file: Optional[Path] = None) -> None:
    """Log to stderr at ``level`` and, when given, to ``log_file`` at DEBUG."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler()
    console.setLevel(level)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    console.addFilter(RedactSecrets())
    root.addHandler(console)
    if log_file is not None:
        add_file_handler(log_file)
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "urllib3", "filelock", "datasets", "matplotlib", "openai._base_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def add_file_handler(log_file: Path) -> None:
    """Also write every record (DEBUG and up) to ``log_file``."""
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactSecrets())
    logging.getLogger().addHandler(handler)

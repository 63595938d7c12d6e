"""Console + file logging with secret redaction, clean log files, and the third-party noise a user should not see."""
from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Optional

from src.utils.secrets import RedactSecrets

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")  # cursor codes and carriage returns progress bars write

# (logger, start of a message dropped there, why it is noise)
DROPPED = (
    # bitsandbytes asks for the hub's "kernels" package on CPUs with AVX512-BF16; offline it cannot be fetched,
    # and bitsandbytes falls back to its own CPU 4-bit path, which is what runs here either way
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community"),
    # TRL advises against one example per padding-free micro-batch; on CPU that is the fast choice (src.train.options)
    ("trl.trainer.sft_trainer", "You are using a per_device_train_batch_size of 1 with padding-free"),
)


class CleanText(logging.Filter):
    """Strip carriage returns and terminal cursor codes from a record before it reaches a log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the message in place; never drops a record."""
        msg = record.getMessage()
        if ANSI.search(msg):
            record.msg, record.args = ANSI.sub("", msg), ()
        return True


class DropMessage(logging.Filter):
    """Drop records of one logger whose message contains ``text`` (libraries prefix theirs, e.g. ``[RANK 0]``)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the dropped message."""
        return self.text not in record.getMessage()


def quiet_third_party() -> None:
    """Silence what is noise in this pipeline, each with its reason (see ``DROPPED`` and below)."""
    for name, prefix in DROPPED:
        logging.getLogger(name).addFilter(DropMessage(prefix))
    for noisy in ("httpx", "httpcore", "urllib3", "filelock", "datasets", "matplotlib", "openai._base_client",
                  "accelerate"):  # accelerate logs ~16 INFO lines while a checkpoint is restored on resume
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # peft 0.21 reads model.is_gradient_checkpointing, which transformers 5 deprecated; nothing of ours sets it
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    if not sys.stderr.isatty():  # progress bars in a redirected stderr are walls of \r; our own lines say enough
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read by huggingface_hub and transformers


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
    quiet_third_party()


def add_file_handler(log_file: Path) -> None:
    """Also write every record (DEBUG and up) to ``log_file``, without cursor codes or carriage returns."""
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactSecrets())
    handler.addFilter(CleanText())
    logging.getLogger().addHandler(handler)

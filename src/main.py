"""Entry point: ``python -m src.main [--debug-small] [--resume] [--skip-...] [key.sub=value ...]``.

Parses, validates everything before the first model is loaded, then runs the stages in order.
"""
from __future__ import annotations

import logging
import sys
from typing import Optional

from src.cli import build_parser, flag_values, selected_stages
from src.config import load_config
from src.errors import UserError
from src.utils.logging_setup import setup_logging
from src.utils.secrets import load_dotenv_once

log = logging.getLogger("src.main")


def main(argv: Optional[list[str]] = None) -> int:
    """Run the pipeline; 0 on success, 2 on a user error (one line per problem), 130 on Ctrl-C."""
    args = build_parser().parse_args(argv)
    setup_logging("INFO")
    try:
        load_dotenv_once()
        cfg = load_config(args.config, args.overrides, args.debug_small, flag_values(args))
        setup_logging(cfg.log_level)
        from src.run import prepare_run
        from src.pipeline import run_stages

        ctx = prepare_run(cfg, args.run_name, args.resume, selected_stages(args))
        run_stages(ctx)
        log.info("run %s finished: %s", ctx.run_name, ctx.run_dir)
        return 0
    except UserError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"error: {problem}\n")
        return 2
    except KeyboardInterrupt:
        log.error("interrupted; rerun with --resume to continue")
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""Entry point: ``python -m src.main [--debug-small] [--resume] [--skip-...] [key.sub=value ...]``.

Parses, validates everything before the first model is loaded, then runs the stages in order.
The installed command ``dialsum`` is the same (``dialsum [run] ...``), with ``dialsum evaluate ...``
(``src.evaluate``), ``dialsum ensemble ...`` (``src.ensemble``) and ``dialsum doctor ...`` (``src.doctor``) beside it.
"""
from __future__ import annotations

import errno
import logging
import sys
from typing import Optional

from src.cli import flag_values, parse_args, stage_choice
from src.errors import UserError
from src.utils.logging_setup import setup_logging
from src.utils.secrets import load_dotenv_once

log = logging.getLogger("src.main")

# write failures a user fixes (space, permissions, a read-only folder): one line, not a traceback
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def main(argv: Optional[list[str]] = None, prog: str = "python -m src.main") -> int:
    """Run the pipeline; 0 on success, 2 on a user error (one line per problem), 130 on Ctrl-C."""
    args = parse_args(argv, prog)
    setup_logging("INFO")
    try:
        load_dotenv_once()
        from src.run import configure, describe_plan, prepare_run, restore_choice

        cfg, run_name = configure(args.config, args.overrides, args.debug_small, flag_values(args), args.run_name,
                                  args.resume)
        if args.print_config:
            from src.run import config_yaml

            sys.stdout.write(config_yaml(cfg))
            return 0
        setup_logging(cfg.log_level)
        explicit = frozenset([o.split("=", 1)[0].strip() for o in args.overrides] + list(flag_values(args)))
        choice = stage_choice(args)
        if args.resume and run_name is not None:
            choice = restore_choice(cfg, run_name, choice)
        from src.pipeline import enable_named, is_on

        stages = choice.selected(lambda stage: is_on(cfg, stage))
        cfg = enable_named(cfg, stages)
        ctx = prepare_run(cfg, run_name, args.resume, stages, dry_run=args.dry_run, explicit=explicit, choice=choice)
        if args.dry_run:
            sys.stdout.write(describe_plan(ctx))
            return 0
        from src.pipeline import run_stages

        run_stages(ctx)
        log.info("run %s finished: %s", ctx.run_name, ctx.run_dir)
        return 0
    except UserError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"error: {problem}\n")
        return 2
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        where = exc.filename or "a file"
        sys.stderr.write(f"error: cannot write {where}: {exc.strerror}; free space or fix the permissions there, "
                         "then rerun with --resume (finished stages and checkpoints are kept)\n")
        return 2
    except KeyboardInterrupt:
        log.error("interrupted; rerun with --resume to continue")
        return 130


SUBCOMMANDS = ("run", "evaluate", "ensemble", "doctor")


def entry_point(argv: Optional[list[str]] = None) -> int:
    """``dialsum``: ``dialsum [run] FLAGS`` runs the pipeline; ``dialsum evaluate|ensemble|doctor FLAGS`` the other tools."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else "run"
    rest = argv[1:] if argv and argv[0] in SUBCOMMANDS else argv
    if command == "evaluate":
        from src.evaluate import main as evaluate_main

        return evaluate_main(rest, prog="dialsum evaluate")
    if command == "ensemble":
        from src.ensemble import main as ensemble_main

        return ensemble_main(rest, prog="dialsum ensemble")
    if command == "doctor":
        from src.doctor import main as doctor_main

        return doctor_main(rest, prog="dialsum doctor")
    return main(rest, prog="dialsum")


if __name__ == "__main__":
    sys.exit(main())

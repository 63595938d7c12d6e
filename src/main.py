"""Entry point: ``python -m src.main [--debug-small] [--resume] [--skip-...] [key.sub=value ...]``.

Parses, validates everything before the first model is loaded, then runs the stages in order.
The installed command ``dialsum`` is the same (``dialsum [run] ...``), with ``dialsum evaluate ...``
(``src.evaluate``), ``dialsum ensemble ...`` (``src.ensemble``), ``dialsum compare ...`` (``src.compare``),
``dialsum runs ...`` (``src.runs``), ``dialsum doctor ...`` (``src.doctor``) and ``dialsum export ...``
(``src.export``) beside it.
"""
from __future__ import annotations

import errno
import importlib
import logging
import sys
from typing import Optional

from src.cli import flag_values, parse_args, stage_choice
from src.utils.errors import UserError, printable
from src.utils.logging_setup import setup_logging
from src.utils.secrets import add_secret_name, check_secrets, load_dotenv_once

log = logging.getLogger("src.main")

# write failures a user fixes (space, permissions, a read-only folder): one line, not a traceback
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def main(argv: Optional[list[str]] = None, prog: str = "python -m src.main") -> int:
    """Run the pipeline; 0 on success, 2 on a user error (one line per problem), 130 on Ctrl-C."""
    args = parse_args(argv, prog)
    setup_logging("INFO")
    try:
        load_dotenv_once()
        # the run and its stages (pandas, and torch where a stage needs it) load only after --help has been answered
        from src.pipeline import enable_named, is_on, run_stages
        from src.run import config_yaml, configure, describe_plan, prepare_run, restore_choice

        cfg, run_name = configure(args.config, args.overrides, args.debug_small, flag_values(args), args.run_name,
                                  args.resume)
        add_secret_name(cfg.augmentation.api.api_key_env)
        check_secrets()
        if args.print_config:
            sys.stdout.write(config_yaml(cfg))
            return 0
        setup_logging(cfg.log_level)
        explicit = frozenset([o.split("=", 1)[0].strip() for o in args.overrides] + list(flag_values(args)))
        choice = stage_choice(args)
        if args.resume and run_name is not None:
            choice = restore_choice(cfg, run_name, choice)
        stages = choice.selected(lambda stage: is_on(cfg, stage))
        cfg = enable_named(cfg, stages)
        ctx = prepare_run(cfg, run_name, args.resume, stages, dry_run=args.dry_run, explicit=explicit, choice=choice)
        if args.dry_run:
            sys.stdout.write(describe_plan(ctx))
            return 0
        if ctx.is_main and not args.resume:  # what `python -m src.runs` diffs the run's config against (a resume
            # starts from the saved config.yaml, not from --config, so it keeps what the first command recorded)
            ctx.manifest.data.setdefault("preset", started_from(args.config, args.debug_small))
        run_stages(ctx)
        log.info("run %s finished: %s", ctx.run_name, ctx.run_dir)
        return 0
    except UserError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"error: {printable(problem)}\n")
        return 2
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        where = exc.filename or "a file"
        sys.stderr.write(f"error: cannot write {printable(str(where))}: {exc.strerror}; free space or fix the permissions there, "
                         "then rerun with --resume (finished stages and checkpoints are kept)\n")
        return 2
    except KeyboardInterrupt:
        log.error("interrupted; rerun with --resume to continue")
        return 130


def started_from(config: Optional[str], debug_small: bool) -> dict:
    """The preset a run starts from: the ``--config`` value as given and the file it named (None: the default
    config), and whether the ``--debug-small`` overlay applied."""
    from src.config.resources import find_config

    return {"config": config, "path": str(find_config(config).resolve()) if config else None,
            "debug_small": debug_small}


# dialsum's other tools: the module whose main(argv, prog) each runs (imported when named, so each keeps its own
# --help as light as it is)
SUBCOMMANDS = {"evaluate": "src.evaluate", "ensemble": "src.ensemble", "compare": "src.compare", "runs": "src.runs",
               "doctor": "src.doctor", "export": "src.export"}


def entry_point(argv: Optional[list[str]] = None) -> int:
    """``dialsum``: ``dialsum [run] FLAGS`` runs the pipeline; ``dialsum evaluate|ensemble|compare|runs|doctor|export
    FLAGS`` the other tools."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in ("run", *SUBCOMMANDS) else "run"
    rest = argv[1:] if argv and argv[0] in ("run", *SUBCOMMANDS) else argv
    if command == "run":
        return main(rest, prog="dialsum")
    tool: int = importlib.import_module(SUBCOMMANDS[command]).main(rest, prog=f"dialsum {command}")
    return tool

if __name__ == "__main__":
    sys.exit(main())

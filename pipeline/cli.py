"""Command line: ``pipeline run extract|train|embed|evaluate``, ``pipeline search``,
``pipeline make-example`` and ``pipeline make-bench``. Thin by design: each module registers its
own commands.

Torch, Dask and Whisper load only inside the command that needs them, after the arguments and
the files they name are checked: a wrong path fails in a fraction of a second."""

from __future__ import annotations

import argparse
import logging
import sys

from pipeline import catalog_cli, extract_cli
from pipeline.errors import UserError
from pipeline.extract_cli import OS_FIXES, to_stderr
from pipeline.retrieval import cli as retrieval_cli
from pipeline.run_log import configure, stderr_handler
from pipeline.synth import bench, example
from pipeline.train import cli as train_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a job").add_subparsers(dest="job", required=True)
    extract_cli.register(run)
    train_cli.register_train(run)
    retrieval_cli.register_run(run)
    retrieval_cli.register_search(commands)
    example.register(commands)
    bench.register(commands)
    catalog_cli.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log_format = getattr(args, "log_format", "text")
    if log_format == "json":  # from the start: a mistake found before the run is JSON too
        configure([stderr_handler(log_format, None)], log_format)
    try:
        return args.handler(args)
    except UserError as e:
        to_stderr(str(e), logging.ERROR, log_format)
        return 2
    except OSError as e:
        if e.errno not in OS_FIXES:
            raise
        where = f"{e.filename}: " if e.filename else ""
        to_stderr(f"{where}{e.strerror}; {OS_FIXES[e.errno]}", logging.ERROR, log_format)
        return 2


if __name__ == "__main__":
    sys.exit(main())

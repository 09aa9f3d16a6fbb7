"""Run logging: one log file per run, under the run's own folder, so each output says how it
was made; as text for people or, with ``--log-format json``, one JSON object per line for a
cluster's log collector.

Every JSON record carries the run id, which its handler's formatter holds (records come from
the scheduler's and Dask's threads too); ``extra={"partition": i, "track_id": t}`` adds where
it happened, so library code logs as usual and never passes the run id around.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTEXT_FIELDS = ("partition", "track_id")  # set per record through ``extra=``


def add_log_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text (default), or json: one JSON object per line for log collectors",
    )


def new_run_id(job: str) -> str:
    """``JOB-<local time>``: also the name of the run's log file."""
    return f"{job}-{time.strftime('%Y%m%dT%H%M%S')}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, run id, logger, message, and
    partition and track_id when the record has them; a traceback as ``exception``."""

    def __init__(self, run_id: str | None) -> None:
        super().__init__()
        self.run_id = run_id

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "run_id": self.run_id,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def formatter(
    log_format: str, run_id: str | None, text_format: str = TEXT_FORMAT
) -> logging.Formatter:
    return JsonFormatter(run_id) if log_format == "json" else logging.Formatter(text_format)


def run_log_handler(
    folder: Path, job: str, log_format: str = "text"
) -> tuple[logging.Handler, Path]:
    """A file handler for ``folder/logs/<run id>.log`` and that file's path; the file's name
    without ``.log`` is the run id."""
    log_dir = folder / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{new_run_id(job)}.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(formatter(log_format, log_file.stem))
    return handler, log_file


def stderr_handler(
    log_format: str, run_id: str | None, text_format: str = TEXT_FORMAT
) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format, run_id, text_format))
    return handler


def configure(handlers: list[logging.Handler], log_format: str) -> None:
    """Root logging through ``handlers``. In JSON mode Dask's own loggers, which print text to
    stderr by themselves, go through them too, so every line a collector reads is JSON."""
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)
    logging.captureWarnings(log_format == "json")  # Python warnings as records too
    if log_format == "json":
        for name in ("distributed", "dask"):
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True

"""One log file per run, under the run's own folder, so each output says how it was made."""

from __future__ import annotations

import logging
import time
from pathlib import Path


def run_log_handler(folder: Path, job: str) -> tuple[logging.Handler, Path]:
    """A file handler for ``folder/logs/JOB-<time>.log`` and that file's path."""
    log_dir = folder / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{job}-{time.strftime('%Y%m%dT%H%M%S')}.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler, log_file

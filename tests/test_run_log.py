"""``--log-format json``: one JSON object per line, with the run id and, where it applies, the
partition and track; checked on a real extraction's log file and on the formatter itself."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.run_log import JsonFormatter, run_log_handler


def test_json_formatter_fields(tmp_path: Path) -> None:
    handler, log_file = run_log_handler(tmp_path, "extract", "json")
    logger = logging.getLogger("tests.run_log")
    logger.addHandler(handler)
    try:
        where = {"partition": 3, "track_id": "a\u00e9"}
        logger.warning("track %s rejected: %s", "a\u00e9", "no_singing", extra=where)
        try:
            raise ValueError("broken")
        except ValueError:
            logger.exception("partition %d failed", 4, extra={"partition": 4})
    finally:
        logger.removeHandler(handler)
        handler.close()
    first, second = (json.loads(line) for line in log_file.read_text().splitlines())
    assert first["run_id"] == log_file.stem and first["level"] == "WARNING"
    assert first["message"] == "track a\u00e9 rejected: no_singing"
    assert (first["partition"], first["track_id"]) == (3, "a\u00e9")
    assert datetime.fromisoformat(first["time"]).utcoffset().total_seconds() == 0
    assert second["partition"] == 4 and "track_id" not in second
    assert "ValueError: broken" in second["exception"]


def test_json_formatter_is_one_line_per_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "two\nlines", None, None)
    assert "\n" not in JsonFormatter("r1").format(record)


@pytest.mark.integration
def test_extraction_logs_are_json_lines(
    example_extraction: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """The session's example extraction runs with ``--log-format json`` (tests/conftest.py):
    every line of its log file and of its stderr (the driver's and the LocalCluster workers')
    is a JSON record of that run."""
    output, result = example_extraction
    terminal = [json.loads(line) for line in result.stderr.splitlines()]
    assert terminal
    (run_id,) = {r["run_id"] for r in terminal}
    # Other tests run on this folder too (a refused run still opens its own log file).
    log_file = output / "logs" / f"{run_id}.log"
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert records
    for record in records:
        assert {"time", "level", "run_id", "logger", "message"} <= record.keys()
        assert record["run_id"] == log_file.stem
        datetime.fromisoformat(record["time"])
    done = [r for r in records if re.fullmatch(r"partition \d+ complete: \d+ tracks", r["message"])]
    assert sorted(r["partition"] for r in done) == [0, 1, 2, 3]
    assert all(r["message"].startswith(f"partition {r['partition']} ") for r in done)
    rejected = [r for r in records if "track_id" in r]
    assert "interlude" in {r["track_id"] for r in rejected}
    assert all(r["level"] == "WARNING" and "partition" in r for r in rejected)

"""JSON logs from the worker processes of a LocalCluster the run started itself.

Those processes write to the run's stderr, so with ``--log-format json`` their records (Dask's
and the stages') are JSON lines with the run's id too. Workers of a cluster the run only
attaches to (``--scheduler``) keep the logging their owner gave them.
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from pipeline.run_log import configure, stderr_handler


class JsonWorkerLogs(WorkerPlugin):
    """Sets up each worker process's logging as the driver's: JSON lines on stderr."""

    name = "pipeline-json-logs"

    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id

    def setup(self, worker: Any) -> None:
        configure([stderr_handler("json", self.run_id)], "json")

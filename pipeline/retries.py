"""Task retries as the Dask scheduler sees them, for the run summary and report.

Only the scheduler knows that a task failed and was re-run (``retries=``): the client sees
only the final result. This plugin counts, per kind of task (the key's first word:
``prepare``, ``whisper``, ``write``), the runs that erred and were retried. It lives on the
scheduler, so a remote scheduler needs this package installed, as its workers do.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from distributed import Client
from distributed.diagnostics.plugin import SchedulerPlugin

RETRY_STIMULUS = "task-erred-"  # an erred task with retries left goes processing -> released


class RetryCounter(SchedulerPlugin):
    """Counts retried task runs of one extraction, recognised by its key ``token``."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.retries: Counter[str] = Counter()

    def transition(
        self, key: Any, start: str, finish: str, *args: Any, stimulus_id: str = "", **kwargs: Any
    ) -> None:
        if start != "processing" or finish != "released" or self.token not in str(key):
            return
        if stimulus_id.startswith(RETRY_STIMULUS):
            self.retries[str(key).split("-", 1)[0]] += 1


def plugin_name(token: str) -> str:
    return f"pipeline-retries-{token}"


def start_counting(client: Client, token: str) -> None:
    client.register_plugin(RetryCounter(token), name=plugin_name(token))


def _read_counts(dask_scheduler: Any, name: str) -> dict[str, int]:
    return dict(dask_scheduler.plugins[name].retries)


def retry_counts(client: Client, token: str) -> dict[str, int]:
    """Retried task runs so far, per kind of task."""
    return client.run_on_scheduler(_read_counts, name=plugin_name(token))


def stop_counting(client: Client, token: str) -> None:
    client.unregister_scheduler_plugin(plugin_name(token))

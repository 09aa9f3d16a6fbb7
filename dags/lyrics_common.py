"""What both lyrics-pipeline DAGs share: a task is one ``pipeline`` command line.

The DAG params reach the command as environment variables, never pasted into the shell
text, so a path with spaces or quotes stays one argument (a Python task passes them as a list).
The ``pipeline`` on the task's ``PATH`` runs the work; the DAGs only say what runs when, how
often it is retried and how long it may take.

``output`` may be a local folder or a bucket URL (``s3://bucket/lyrics``): the commands take
either, and the few files the DAGs handle themselves (the run's report folder, the published
models) go through ``pipeline.io.object_store``, never through ``mkdir``, ``cp`` or ``ln``.
"""

from __future__ import annotations

import subprocess
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import TriggerRule

# A task exits with this to say it had nothing to do (BashOperator's default skip code).
NOTHING_TO_DO = 99
# The DAG run's id as a folder name: `manual__2026-12-01T22:00:00+00:00` keeps only safe bytes.
RUN_FOLDER = "{{ run_id | replace(':', '') | replace('+', '') }}"

DEFAULT_ARGS = {
    "owner": "catalog",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
}


def cli_task(
    task_id: str,
    command: str,
    env: dict[str, str],
    timeout: timedelta,
    retries: int = 2,
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS,
) -> BashOperator:
    """A task running ``command`` under bash with ``env`` (templated) added to its environment.

    ``set -euo pipefail`` makes any failing command fail the task; retrying re-runs the same
    command, which every ``pipeline run`` job resumes rather than redoes.
    """
    return BashOperator(
        task_id=task_id,
        bash_command=f"set -euo pipefail\n{command}",
        env=env,
        append_env=True,
        execution_timeout=timeout,
        retries=retries,
        skip_on_exit_code=NOTHING_TO_DO,
        trigger_rule=trigger_rule,
    )


def run_pipeline(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``pipeline ARGS`` from the task's ``PATH``, its stderr into the task log, its stdout
    printed there too and returned with the exit status (``check_exit`` raises for it)."""
    result = subprocess.run(["pipeline", *args], stdout=subprocess.PIPE, text=True, check=False)
    print(result.stdout, end="")
    return result


def check_exit(result: subprocess.CompletedProcess[str]) -> None:
    """A non-zero exit fails the task, which Airflow then retries."""
    if result.returncode != 0:
        command = " ".join(result.args[:3])
        raise RuntimeError(f"{command} exited with {result.returncode}")


def rendered(template: str, context: Any) -> str:
    """A Jinja template (``RUN_FOLDER``) rendered for the running task."""
    return context["task"].render_template(template, context)

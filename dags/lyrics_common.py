"""What both lyrics-pipeline DAGs share: a task is one ``pipeline`` command line.

The DAG params reach the command as environment variables, never pasted into the shell
text, so a path with spaces or quotes stays one argument. The ``pipeline`` on the task's
``PATH`` runs the work; the DAGs only say what runs when, how often it is retried and how long
it may take.
"""

from __future__ import annotations

from datetime import timedelta

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

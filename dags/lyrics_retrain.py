"""Periodic retraining: LIVI and WEALY trained on the accumulated shards, each evaluated on
its test works (which chose nothing), and published only when its validation MAP beats the
published run's.

Each DAG run trains into its own ``OUTPUT/runs/<kind>/<run>`` folder; a retried or cleared
training task resumes from that folder's ``last.pt`` and takes the steps it would have taken.
``OUTPUT/models/<kind>`` is a link to the published run, which ``lyrics_nightly`` embeds with;
in a bucket (``output`` an ``s3://`` URL), a copy of the run's config, split and ``best.pt``.
Validation MAPs are compared as each run recorded them, on the works it held out; as the
shards grow those works change, so a new run is compared with the old one on a newer split.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, get_current_context, task
from lyrics_common import DEFAULT_ARGS, RUN_FOLDER, cli_task, rendered

KINDS = ("livi", "wealy")

PARAMS = {
    "catalog": Param(
        "/data/catalog/catalog.csv", type="string", description="catalog CSV with work_id"
    ),
    "output": Param(
        "/data/lyrics",
        type="string",
        description="root folder (or bucket URL) of lyrics_nightly's outputs",
    ),
    "device": Param("cpu", enum=["cpu", "cuda"], description="where to train and embed"),
    "preset": Param("paper", enum=["paper", "small"], description="model size"),
    "epochs": Param(None, type=["null", "integer"], description="epochs; empty: the preset's"),
}

ENV = {
    "CATALOG": "{{ params.catalog }}",
    "OUTPUT": "{{ params.output }}",
    "DEVICE": "{{ params.device }}",
    "PRESET": "{{ params.preset }}",
    "EPOCHS": "{{ params.epochs or '' }}",
    "RUN": RUN_FOLDER,
}

TRAIN = """\
pipeline run train "$KIND" --shards "$OUTPUT/features" --output "$OUTPUT/runs/$KIND/$RUN" \\
    --preset "$PRESET" --device "$DEVICE" ${EPOCHS:+--epochs "$EPOCHS"}
"""

EMBED = """\
run="$OUTPUT/runs/$KIND/$RUN"
pipeline run embed --model "$run" --input "$OUTPUT/features" --output "$run/embeddings.parquet" \\
    --device "$DEVICE"
"""

EVALUATE = """\
run="$OUTPUT/runs/$KIND/$RUN"
pipeline run evaluate --embeddings "$run/embeddings.parquet" --catalog "$CATALOG" \\
    --holdout "$run" --output "$run/evaluation/metrics.json"
"""


@task(execution_timeout=timedelta(minutes=10))
def publish(kind: str) -> dict[str, object]:
    """Link OUTPUT/models/KIND to this DAG run's KIND run if its validation MAP is higher."""
    from pipeline.io.object_store import join
    from pipeline.train.publish import publish_if_better

    context = get_current_context()
    output = context["params"]["output"]
    run = rendered(RUN_FOLDER, context)
    decision = publish_if_better(join(output, "runs", kind, run), join(output, "models", kind))
    return {
        "published": decision.published,
        "candidate_map": decision.candidate_map,
        "incumbent_map": decision.incumbent_map,
    }


with DAG(
    dag_id="lyrics_retrain",
    description="Retrain LIVI and WEALY; publish each whose validation MAP is higher",
    schedule="0 3 * * 6",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["lyrics-pipeline"],
) as dag:
    for kind in KINDS:
        env = {**ENV, "KIND": kind}
        train = cli_task(f"train_{kind}", TRAIN, env, timeout=timedelta(hours=24))
        embed = cli_task(f"embed_{kind}", EMBED, env, timeout=timedelta(hours=2))
        evaluate = cli_task(f"evaluate_{kind}", EVALUATE, env, timeout=timedelta(hours=1))
        train >> embed >> evaluate >> publish.override(task_id=f"publish_{kind}")(kind)

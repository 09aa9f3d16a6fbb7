"""Nightly incremental job: extract new or changed catalog rows, refresh the embeddings,
match every track to its nearest others, evaluate, and publish the run's report.

Extraction writes into the same ``OUTPUT/features`` every night, so it processes only the
tracks that are new or changed since the last run, and a cleared or retried task resumes
from the partitions already complete (README, "Partitions" and "Edited catalogs"). A
rejected track is a row of the tracks table, not a failure: ``pipeline run extract`` exits 0
with rejections and 1 only when a partition failed, which fails the task and retries it.

``pipeline run match`` answers the catalog's question (which recordings are versions of each
other): each track's nearest other tracks, and with ``cluster_min_score`` set, candidate works.
``pipeline run evaluate`` scores the same embeddings against the catalog's ``work_id``: the
baseline with every track as a query, a trained model with only its run's test works as queries
(``--holdout``), so no work it trained on or chose its checkpoint with flatters its figure.

``output`` may be a bucket URL: every output then lives there, ``reports/latest`` is a copy of
the run's report folder instead of a link.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param, TriggerRule, get_current_context, task
from lyrics_common import (
    DEFAULT_ARGS,
    RUN_FOLDER,
    check_exit,
    cli_task,
    rendered,
    run_pipeline,
)

# Embeddings refreshed every night: the untrained text baseline, and the published (or
# given) LIVI and WEALY runs when there are any.
TRAINED = ("livi", "wealy")
EMBEDDINGS = ("transcript-text", *TRAINED)

PARAMS = {
    "catalog": Param(
        "/data/catalog/catalog.csv", type="string", description="catalog CSV, seen by workers"
    ),
    "output": Param(
        "/data/lyrics",
        type="string",
        description="root folder shared by all workers, or a bucket URL (s3://bucket/lyrics): "
        "features/, embeddings/, metrics/, reports/; models/ holds what lyrics_retrain published",
    ),
    "scheduler": Param(
        "", type="string", description="Dask scheduler address; empty: a LocalCluster"
    ),
    "workers": Param(None, type=["null", "integer"], description="LocalCluster worker processes"),
    "device": Param("cpu", enum=["cpu", "cuda"], description="where Whisper and models run"),
    "whisper_model": Param(
        "", type="string", description="CTranslate2 Whisper folder; empty: the bundled base"
    ),
    "partition_size": Param(16, type="integer", minimum=1, description="tracks per partition"),
    "livi_model": Param(
        "", type="string", description="LIVI run folder or URL; empty: OUTPUT/models/livi if there"
    ),
    "wealy_model": Param(
        "",
        type="string",
        description="WEALY run folder or URL; empty: OUTPUT/models/wealy if there",
    ),
    "match_k": Param(20, type="integer", minimum=1, description="nearest tracks kept per track"),
    "cluster_min_score": Param(
        None,
        type=["null", "number"],
        description="cosine joining two tracks into one candidate work; empty: no clusters",
    ),
}

ENV = {
    "CATALOG": "{{ params.catalog }}",
    "OUTPUT": "{{ params.output }}",
    "MATCH_K": "{{ params.match_k }}",
    "MIN_SCORE": "{{ '' if params.cluster_min_score is none else params.cluster_min_score }}",
}

# The run a trained model's embeddings came from, as ``embed`` finds it: the given one, else
# the published one. EVALUATE's MODEL; the baseline has none.
MODEL = "{{{{ params.{0}_model or params.output.rstrip('/') ~ '/models/{0}' }}}}"
EVALUATE = """\
pipeline run evaluate --embeddings "$OUTPUT/embeddings/$NAME.parquet" --catalog "$CATALOG" \\
    --output "$OUTPUT/metrics/$NAME/metrics.json" ${MODEL:+--holdout "$MODEL"}
"""

MATCH = """\
pipeline run match --embeddings "$OUTPUT/embeddings/$NAME.parquet" \\
    --output "$OUTPUT/matches/$NAME.parquet" --k "$MATCH_K" \\
    ${MIN_SCORE:+--min-score "$MIN_SCORE" --clusters}
"""


@task(execution_timeout=timedelta(hours=10), retries=3)
def extract() -> None:
    """New or changed catalog rows into OUTPUT/features; its summary into the run's reports."""
    from pipeline.io.object_store import join, write_bytes_at

    context = get_current_context()
    params = context["params"]
    args = ["run", "extract", "--input", params["catalog"], "--device", params["device"]]
    args += ["--output", join(params["output"], "features")]
    args += ["--partition-size", str(params["partition_size"])]
    for flag, key in (("--scheduler", "scheduler"), ("--workers", "workers")):
        if params[key]:
            args += [flag, str(params[key])]
    if params["whisper_model"]:
        args += ["--whisper-model", params["whisper_model"]]
    result = run_pipeline(*args)
    report = join(params["output"], "reports", rendered(RUN_FOLDER, context))
    write_bytes_at(join(report, "extract-summary.txt"), result.stdout.encode())
    check_exit(result)


@task(execution_timeout=timedelta(hours=2))
def embed(name: str) -> None:
    """OUTPUT/embeddings/NAME.parquet: the baseline, or the given or published run's."""
    from airflow.sdk.exceptions import AirflowSkipException

    from pipeline.io.object_store import exists_at, join

    params = get_current_context()["params"]
    output = params["output"]
    model = params[f"{name}_model"] if name in TRAINED else name
    if name in TRAINED and not model:
        model = join(output, "models", name)
        if not exists_at(join(model, "config.json")):
            raise AirflowSkipException(
                f"no {name} model: set params.{name}_model, or let lyrics_retrain publish one"
            )
    args = ["run", "embed", "--model", model, "--input", join(output, "features")]
    args += ["--output", join(output, "embeddings", f"{name}.parquet")]
    check_exit(run_pipeline(*args, "--device", params["device"]))


@task(execution_timeout=timedelta(minutes=10), trigger_rule=TriggerRule.NONE_FAILED)
def publish_report() -> list[str]:
    """The extraction's report.html, every evaluation's files (metrics.json, report.html) and
    every match summary into reports/<run>/; reports/latest points there (a link), or in a
    bucket, holds a copy of it. The names it published."""
    from pipeline.io.object_store import (
        exists_at,
        is_url,
        join,
        list_files_at,
        read_bytes_at,
        write_bytes_at,
    )

    context = get_current_context()
    output = context["params"]["output"]
    run = rendered(RUN_FOLDER, context)
    report = join(output, "reports", run)
    copies = {join(output, "features", "report.html"): "extract.html"}
    for name in EMBEDDINGS:
        metrics = join(output, "metrics", name)
        copies |= {join(metrics, file): f"{name}-{file}" for file in list_files_at(metrics)}
        summary = join(output, "matches", f"{name}.summary.json")
        if exists_at(summary):
            copies[summary] = f"{name}-matches.summary.json"
    for source, target in copies.items():
        write_bytes_at(join(report, target), read_bytes_at(source))
    published = list_files_at(report)
    latest = join(output, "reports", "latest")
    if is_url(output):  # no links in a bucket
        for name in published:
            write_bytes_at(join(latest, name), read_bytes_at(join(report, name)))
    else:
        staging = Path(output) / "reports" / ".latest.tmp"
        staging.unlink(missing_ok=True)
        staging.symlink_to(run, target_is_directory=True)
        os.replace(staging, latest)
    print("\n".join(published))
    return published


with DAG(
    dag_id="lyrics_nightly",
    description="Extract new or changed catalog rows, refresh embeddings, evaluate, publish",
    schedule="0 1 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one extraction per output folder; the pipeline's lock refuses two
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["lyrics-pipeline"],
) as dag:
    extracted = extract()
    # Skipped models leave nothing to publish; the others' results still are.
    published = publish_report()
    for name in EMBEDDINGS:
        env = {**ENV, "NAME": name}
        if name in TRAINED:
            env["MODEL"] = MODEL.format(name)
        embedded = embed.override(task_id=f"embed_{name}")(name)
        evaluate = cli_task(f"evaluate_{name}", EVALUATE, env, timeout=timedelta(hours=1))
        match = cli_task(f"match_{name}", MATCH, env, timeout=timedelta(hours=6))
        extracted >> embedded >> [match, evaluate] >> published

"""Nightly incremental job: extract new or changed catalog rows, refresh the embeddings,
match every track to its nearest others, evaluate, and publish the run's report.

Extraction writes into the same ``OUTPUT/features`` every night, so it processes only the
tracks that are new or changed since the last run, and a cleared or retried task resumes
from the partitions already complete (README, "Partitions" and "Edited catalogs"). A
rejected track is a row of the tracks table, not a failure: ``pipeline run extract`` exits 0
with rejections and 1 only when a partition failed, which fails the task and retries it.

``pipeline run match`` answers the catalog's question (which recordings are versions of each
other): each track's nearest other tracks, and with ``cluster_min_score`` set, candidate works.
``pipeline run evaluate`` scores the same embeddings against the catalog's ``work_id``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, TriggerRule
from lyrics_common import DEFAULT_ARGS, NOTHING_TO_DO, RUN_FOLDER, cli_task

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
        description="root folder shared by all workers: features/, embeddings/, metrics/, "
        "reports/; models/ holds what lyrics_retrain published",
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
        "", type="string", description="LIVI run folder; empty: OUTPUT/models/livi if there"
    ),
    "wealy_model": Param(
        "", type="string", description="WEALY run folder; empty: OUTPUT/models/wealy if there"
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
    "SCHEDULER": "{{ params.scheduler }}",
    "WORKERS": "{{ params.workers or '' }}",
    "DEVICE": "{{ params.device }}",
    "WHISPER_MODEL": "{{ params.whisper_model }}",
    "PARTITION_SIZE": "{{ params.partition_size }}",
    "MATCH_K": "{{ params.match_k }}",
    "MIN_SCORE": "{{ '' if params.cluster_min_score is none else params.cluster_min_score }}",
    "REPORT": "{{ params.output }}/reports/" + RUN_FOLDER,
}

EXTRACT = """\
mkdir -p "$REPORT"
pipeline run extract --input "$CATALOG" --output "$OUTPUT/features" --device "$DEVICE" \\
    --partition-size "$PARTITION_SIZE" ${SCHEDULER:+--scheduler "$SCHEDULER"} \\
    ${WORKERS:+--workers "$WORKERS"} ${WHISPER_MODEL:+--whisper-model "$WHISPER_MODEL"} \\
    | tee "$REPORT/extract-summary.txt"
"""

EMBED = f"""\
model="${{MODEL:-$OUTPUT/models/$NAME}}"
if [ -z "$MODEL" ] && [ ! -e "$model" ]; then
    echo "no $NAME model: set params.${{NAME}}_model, or let lyrics_retrain publish one"
    exit {NOTHING_TO_DO}
fi
mkdir -p "$OUTPUT/embeddings"
pipeline run embed --model "$model" --input "$OUTPUT/features" \\
    --output "$OUTPUT/embeddings/$NAME.parquet" --device "$DEVICE"
"""

EVALUATE = """\
mkdir -p "$OUTPUT/metrics/$NAME"
pipeline run evaluate --embeddings "$OUTPUT/embeddings/$NAME.parquet" --catalog "$CATALOG" \\
    --output "$OUTPUT/metrics/$NAME/metrics.json"
"""

MATCH = """\
mkdir -p "$OUTPUT/matches"
pipeline run match --embeddings "$OUTPUT/embeddings/$NAME.parquet" \\
    --output "$OUTPUT/matches/$NAME.parquet" --k "$MATCH_K" \\
    ${MIN_SCORE:+--min-score "$MIN_SCORE" --clusters}
"""

# The extraction's report.html, every evaluation's files (metrics.json, report.html) and every
# match summary into reports/<run>/, with reports/latest pointing there.
PUBLISH = f"""\
cp "$OUTPUT/features/report.html" "$REPORT/extract.html"
for name in {" ".join(EMBEDDINGS)}; do
    for file in "$OUTPUT/metrics/$name"/*; do
        if [ -f "$file" ]; then cp "$file" "$REPORT/$name-${{file##*/}}"; fi
    done
    summary="$OUTPUT/matches/$name.summary.json"
    if [ -f "$summary" ]; then cp "$summary" "$REPORT/$name-matches.summary.json"; fi
done
ln -sfn "${{REPORT##*/}}" "$OUTPUT/reports/latest"
ls "$REPORT"
"""

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
    extract = cli_task("extract", EXTRACT, ENV, timeout=timedelta(hours=10), retries=3)
    # Skipped models leave nothing to publish; the others' results still are.
    publish = cli_task(
        "publish_report",
        PUBLISH,
        ENV,
        timeout=timedelta(minutes=10),
        trigger_rule=TriggerRule.NONE_FAILED,
    )
    for name in EMBEDDINGS:
        model = "{{ params." + name + "_model }}" if name in TRAINED else name
        env = {**ENV, "NAME": name, "MODEL": model}
        embed = cli_task(f"embed_{name}", EMBED, env, timeout=timedelta(hours=2))
        evaluate = cli_task(f"evaluate_{name}", EVALUATE, env, timeout=timedelta(hours=1))
        match = cli_task(f"match_{name}", MATCH, env, timeout=timedelta(hours=6))
        extract >> embed >> [match, evaluate] >> publish

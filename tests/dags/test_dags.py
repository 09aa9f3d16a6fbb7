"""The DAG files load in a real Airflow, and both DAGs run end to end with ``dag.test()``.

The runs call the real ``pipeline`` CLI on the example features, with a real LocalCluster for
the extraction, on local folders and on a real S3 server (moto's, ``tests/s3_server.py``); they
assert what the tasks did and wrote, never a score's value.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.report.page import read_page
from tests.s3_server import BUCKET, S3Server

DAG_IDS = {"lyrics_nightly", "lyrics_retrain"}
NEW_TRACK = "river-en-1-remaster"


def test_dag_files_load_without_import_errors(dag_bag: Any) -> None:
    assert dag_bag.import_errors == {}
    assert set(dag_bag.dag_ids) == DAG_IDS
    for dag_id in DAG_IDS:
        dag = dag_bag.get_dag(dag_id)
        assert dag.max_active_runs == 1
        for task in dag.tasks:
            assert task.retries >= 1, task.task_id
            assert task.execution_timeout is not None, task.task_id
    nightly = dag_bag.get_dag("lyrics_nightly")
    assert set(nightly.params) >= {"catalog", "output", "scheduler", "device", "whisper_model"}
    assert {"livi_model", "wealy_model"} <= set(nightly.params)


def _states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks find the ``pipeline`` of this environment, as a worker finds its own."""
    bin_dir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def _catalog_with_a_new_row(example_dir: Path) -> Path:
    """The example catalog plus one new track, beside it so that its relative paths hold."""
    with open(example_dir / "catalog.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rows.append({**rows[0], "track_id": NEW_TRACK})
    catalog = example_dir / "catalog-nightly-dag.csv"
    with open(catalog, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return catalog


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_nightly_extracts_only_the_new_row_and_publishes_a_report(
    dag_bag: Any, example_dir: Path, example_features: Path, tmp_path: Path, on_path: None
) -> None:
    from distributed import LocalCluster

    from pipeline.io.parquet import read_table

    output = tmp_path / "lyrics"
    shutil.copytree(example_features, output / "features")  # last night's extraction
    catalog = _catalog_with_a_new_row(example_dir)
    conf = {"catalog": str(catalog), "output": str(output), "partition_size": 3}
    conf["cluster_min_score"] = 0.9
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0")
    with cluster:
        run = dag_bag.get_dag("lyrics_nightly").test(
            run_conf={**conf, "scheduler": cluster.scheduler_address}
        )
    states = _states(run)
    assert str(run.state) == "success", states
    assert states == {
        "extract": "success",
        "embed_transcript-text": "success",
        "evaluate_transcript-text": "success",
        "match_transcript-text": "success",
        "embed_livi": "skipped",  # nothing trained or published yet
        "evaluate_livi": "skipped",
        "match_livi": "skipped",
        "embed_wealy": "skipped",
        "evaluate_wealy": "skipped",
        "match_wealy": "skipped",
        "publish_report": "success",
    }
    with open(catalog, newline="") as f:
        catalog_ids = [row["track_id"] for row in csv.DictReader(f)]
    track_ids = read_table(output / "features" / "tracks", "tracks").column("track_id")
    assert sorted(track_ids.to_pylist()) == sorted(catalog_ids)  # each once, the new one too
    report = output / "reports" / "latest"
    summary = (report / "extract-summary.txt").read_text()
    assert "processed   1 track(s) in this run" in summary
    assert "resumed     4 partition(s)" in summary  # last night's, untouched
    assert "rejected      1  no_singing" in summary  # a rejected track fails no task
    metrics = json.loads((report / "transcript-text-metrics.json").read_text())
    assert metrics["catalog_tracks"] == len(catalog_ids) == 11  # every track counts
    assert metrics["embedded_tracks"] == 10  # the ok tracks, the new one included
    assert metrics["missing_track_ids"] == ["interlude"] and metrics["holdout"] is None
    extraction = read_page(report / "extract.html")  # the whole output, last night's run too
    assert sum(int(r["tracks"]) for r in extraction.rows("track-outcomes")) == len(catalog_ids)
    assert [int(r["tracks processed"]) for r in extraction.rows("runs")] == [10, 1]
    matches = read_table(output / "matches" / "transcript-text.parquet", "matches")
    assert set(matches.column("track_id").to_pylist()) <= set(catalog_ids)
    assert (output / "matches" / "transcript-text.clusters.parquet").is_file()
    assert (report / "transcript-text-matches.summary.json").is_file()
    evaluation = read_page(report / "transcript-text-report.html")
    assert int(evaluation.rows("metrics")[0]["catalog_tracks"]) == metrics["catalog_tracks"]


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_retraining_publishes_a_run_only_when_its_validation_map_is_higher(
    dag_bag: Any, example_dir: Path, example_features: Path, tmp_path: Path, on_path: None
) -> None:
    from pipeline.train.publish import best_validation_map

    output = tmp_path / "lyrics"
    output.mkdir()
    (output / "features").symlink_to(example_features, target_is_directory=True)
    conf = {
        "catalog": str(example_dir / "catalog.csv"),
        "output": str(output),
        "preset": "small",
        "epochs": 1,
    }
    dag = dag_bag.get_dag("lyrics_retrain")
    first = dag.test(run_conf=conf)
    assert str(first.state) == "success", _states(first)
    for kind in ("livi", "wealy"):
        published = (output / "models" / kind).resolve()
        assert published.parent == output / "runs" / kind
        assert (published / "best.pt").is_file()
        metrics = json.loads((published / "evaluation" / "metrics.json").read_text())
        # Evaluated on the works the run did not train on.
        assert Path(metrics["holdout"]).resolve() == published
        assert best_validation_map(published) is not None
    first_runs = {k: (output / "models" / k).resolve() for k in ("livi", "wealy")}
    second = dag.test(run_conf=conf)  # same data, settings and seed: the same MAP, not higher
    assert str(second.state) == "success", _states(second)
    for kind, run_dir in first_runs.items():
        assert len(list((output / "runs" / kind).iterdir())) == 2
        assert (output / "models" / kind).resolve() == run_dir


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_both_dags_keep_every_output_in_a_bucket(
    dag_bag: Any, s3_env: S3Server, example_dir: Path, example_features: Path, on_path: None
) -> None:
    """``output`` an ``s3://`` URL: retraining trains, embeds, evaluates and publishes there
    (a copy of the run, no link); the nightly job resumes the bucket's extraction, embeds with
    the published runs, evaluates, matches and publishes its report folder there, with
    ``reports/latest`` a copy of it."""
    from fsspec.core import url_to_fs

    url = f"s3://{BUCKET}/dags"
    fs, base = url_to_fs(url)
    for child in example_features.iterdir():  # last night's extraction
        fs.put(str(child), f"{base}/features/{child.name}", recursive=child.is_dir())
    catalog = str(example_dir / "catalog.csv")
    conf = {"catalog": catalog, "output": url, "preset": "small", "epochs": 1}
    retrain = dag_bag.get_dag("lyrics_retrain").test(run_conf=conf)
    assert str(retrain.state) == "success", _states(retrain)
    for kind in ("livi", "wealy"):
        run = json.loads(fs.cat_file(f"{base}/models/{kind}/published.json"))["run"]
        assert run.startswith(f"{url}/runs/{kind}/")
        metrics = json.loads(fs.cat_file(f"{run.split('://')[1]}/evaluation/metrics.json"))
        assert metrics["holdout"] == run  # evaluated on the run's test works
    conf = {"catalog": catalog, "output": url, "partition_size": 3}
    nightly = dag_bag.get_dag("lyrics_nightly").test(run_conf=conf)
    states = _states(nightly)
    assert str(nightly.state) == "success", states
    assert set(states.values()) == {"success"}, states  # the published runs embed too
    fs.invalidate_cache()
    for kind in ("livi", "wealy"):  # each trained model is evaluated on its run's test works
        metrics = json.loads(fs.cat_file(f"{base}/metrics/{kind}/metrics.json"))
        assert metrics["holdout"] == f"{url}/models/{kind}"
    (report,) = [k for k in fs.ls(f"{base}/reports", detail=False) if not k.endswith("/latest")]
    names = sorted(Path(k).name for k in fs.ls(report, detail=False))
    expected = {"extract-summary.txt", "extract.html"}
    for name in ("transcript-text", "livi", "wealy"):
        expected |= {f"{name}-metrics.json", f"{name}-report.html"}
        expected.add(f"{name}-matches.summary.json")
    assert set(names) == expected
    for name in names:
        assert fs.cat_file(f"{base}/reports/latest/{name}") == fs.cat_file(f"{report}/{name}")
    summary = fs.cat_file(f"{report}/extract-summary.txt").decode()
    assert "resumed     4 partition(s)" in summary and "processed   0 track(s)" in summary
    assert fs.exists(f"{base}/matches/wealy.parquet")

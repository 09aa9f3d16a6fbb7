"""``pipeline run extract --output s3://bucket/prefix`` against a real S3-compatible server
(moto's, started by the tests on 127.0.0.1, spoken to over HTTP): the objects are the bytes of
a local run, a driver killed mid-run resumes to them, and what the store refuses is one line."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path, PurePosixPath

import fsspec
import numpy as np
import pytest
from fsspec.core import url_to_fs

from pipeline.io.embeddings import read_embeddings
from pipeline.io.object_store import join, parent_of
from pipeline.io.parquet import read_table
from pipeline.io.webdataset import iter_folder, iter_samples, list_shards
from pipeline.partition import keeps_encoder_states
from tests.conftest import REPO, extract_command, run_cli, run_extract
from tests.s3_server import BUCKET, S3Server

pytestmark = pytest.mark.integration

COMPARED = (("tracks", ".parquet"), ("segments", ".parquet"), ("shards", ".tar"))


def _assert_same_objects(url: str, expected_output: Path) -> None:
    """Tracks and segments tables and shards of a prefix, byte for byte those of a folder."""
    fs, base = url_to_fs(url)
    fs.invalidate_cache()
    for folder, suffix in COMPARED:
        expected = sorted((expected_output / folder).glob(f"part-*{suffix}"))
        got = sorted(fs.ls(f"{base}/{folder}", detail=False))
        assert [Path(g).name for g in got] == [p.name for p in expected]
        for key, path in zip(got, expected, strict=True):
            assert fs.cat_file(key) == path.read_bytes(), key


def _assert_no_secret(url: str, server: S3Server) -> None:
    """The manifest, the logs and the report hold neither key."""
    fs, base = url_to_fs(url)
    fs.invalidate_cache()
    keys = [f"{base}/manifest.json", f"{base}/report.html", *fs.ls(f"{base}/logs", detail=False)]
    for key in keys:
        text = fs.cat_file(key).decode()
        for secret in (*server.writer, *server.reader):
            assert secret not in text, key


def test_extraction_to_a_bucket_writes_the_bytes_of_a_local_run(
    s3_env: S3Server, example_dir: Path, example_features: Path
) -> None:
    url = f"s3://{BUCKET}/whole"
    result = run_cli(
        *extract_command(example_dir / "catalog.csv", url, "--partition-size", "3")[1:]
    )
    assert result.returncode == 0, result.stderr
    assert f"report      {url}/report.html" in result.stdout
    _assert_same_objects(url, example_features)
    fs, base = url_to_fs(url)
    manifest = json.loads(fs.cat_file(f"{base}/manifest.json"))
    assert manifest["status"] == "complete" and len(manifest["partitions"]) == 4
    assert not fs.exists(f"{base}/_lock.json")
    assert f"{url}, report written" in fs.cat_file(f"{base}/report.html").decode()  # not scratch
    _assert_no_secret(url, s3_env)

    other = run_extract(
        example_dir / "catalog.csv", url, "--partition-size", "3", "--segment-mode", "vocal"
    )
    assert other.returncode == 2
    assert "segment.mode: 'fixed' -> 'vocal'" in other.stderr and "--overwrite" in other.stderr


def test_killed_driver_resumes_to_the_objects_of_an_uninterrupted_run(
    s3_env: S3Server, example_dir: Path, example_features: Path
) -> None:
    url = f"s3://{BUCKET}/killed"
    args = extract_command(example_dir / "catalog.csv", url, "--partition-size", "3")
    process = subprocess.Popen(
        args, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    fs, base = url_to_fs(url)
    deadline = time.monotonic() + 900  # the first partition, on a busy CI machine
    while not fs.exists(f"{base}/_complete/part-00000.json"):
        assert process.poll() is None and time.monotonic() < deadline, "no partition completed"
        time.sleep(0.2)
        fs.invalidate_cache()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    fs.invalidate_cache()
    assert len(fs.ls(f"{base}/_complete", detail=False)) < 4
    assert fs.exists(f"{base}/_lock.json")  # the killed driver's, taken over below

    resumed = run_cli(*args[1:])
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed     1 partition(s)" in resumed.stdout or "resumed     2" in resumed.stdout
    _assert_same_objects(url, example_features)
    again = run_cli(*args[1:])
    assert again.returncode == 0 and "resumed     4 partition(s)" in again.stdout


@pytest.mark.parametrize(
    ("where", "keys", "expected"),
    [
        ("s3://no-such-bucket/features", "writer", "no such bucket s3://no-such-bucket"),
        (f"s3://{BUCKET}/wrong-keys", "wrong", "the store refused the credentials"),
        (f"s3://{BUCKET}/read-only", "reader", "no permission to write there"),
    ],
)
def test_what_the_store_refuses_stops_the_run_in_one_line(
    s3_env: S3Server,
    example_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    keys: str,
    expected: str,
) -> None:
    credentials = {"writer": s3_env.writer, "reader": s3_env.reader}.get(keys, ("AKIAX", "no"))
    for name, value in s3_env.env(credentials).items():
        monkeypatch.setenv(name, value)
    result = run_extract(example_dir / "catalog.csv", where)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def _ok(*args: str) -> str:
    result = run_cli(*args, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _read(location: str) -> bytes:
    with fsspec.open(location, "rb") as f:
        return f.read()


def _two_track_catalog(example_dir: Path) -> Path:
    """The example's first two rows, beside it so that its relative paths hold."""
    lines = (example_dir / "catalog.csv").read_text().splitlines(keepends=True)
    catalog = example_dir / "catalog-two-tracks.csv"
    catalog.write_text("".join(lines[:3]))
    return catalog


def _livi_run_in_the_bucket(run: str, example_dir: Path, url: str) -> None:
    """``run extract --livi-run URL`` to the bucket and ``run embed --audio --model URL``: the
    bucket run's head on two tracks, one vector each, the same from both paths; the manifest
    names the URL and the weights of the run's ``best.pt``."""
    catalog = _two_track_catalog(example_dir)
    every_window = example_dir / "every-window.yaml"
    every_window.write_text("singing:\n  detector: none\n")
    output = f"{url}/livi-only"
    settings = ("--livi-run", run, "--set", "singing.detector=none")
    result = run_extract(catalog, output, *settings)
    assert result.returncode == 0, result.stderr
    audio = f"{url}/livi-audio.parquet"
    embed = ("run", "embed", "--model", run, "--audio", str(catalog), "--output", audio)
    _ok(*embed, "--config", str(every_window))
    ids, vectors = read_embeddings(f"{output}/embeddings.parquet")
    audio_ids, audio_vectors = read_embeddings(audio)
    assert ids == audio_ids and len(ids) == 2
    np.testing.assert_allclose(vectors, audio_vectors, atol=1e-5)
    manifest = json.loads(_read(f"{output}/manifest.json"))
    assert manifest["config"]["livi_run"] == run
    assert (
        manifest["models"]["livi"]["sha256"] == hashlib.sha256(_read(f"{run}/best.pt")).hexdigest()
    )


@pytest.mark.parametrize("model", ["livi", "wealy"])
def test_train_embed_evaluate_and_match_from_the_bucket_to_the_bucket(
    s3_env: S3Server, example_dir: Path, example_features: Path, tmp_path: Path, model: str
) -> None:
    """Trained from the bucket's shards into a run folder in the bucket, embedded by that run
    into the bucket, evaluated on the works it held out and matched, every output in the
    bucket: the same run files, embeddings, metrics and matches as on local folders. The run
    resumes from the bucket's ``last.pt``; its report names the URL; no key is in its log or
    report."""
    url = f"s3://{BUCKET}/e2e-{model}"
    fs, base = url_to_fs(url)
    for name in ("tracks", "segments", "shards"):
        fs.put(str(example_features / name), f"{base}/features/{name}", recursive=True)
    catalog = str(example_dir / "catalog.csv")
    results = {}
    for root, features in ((str(tmp_path), str(example_features)), (url, f"{url}/features")):
        run = join(root, "runs", model)
        embeddings, metrics = join(root, f"{model}.parquet"), join(root, "metrics.json")
        matches = join(root, "matches.parquet")
        train = ("run", "train", model, "--shards", features, "--output", run)
        _ok(*train, "--preset", "small", "--epochs", "1")
        _ok("run", "embed", "--model", run, "--input", features, "--output", embeddings)
        evaluate = ("--embeddings", embeddings, "--catalog", catalog, "--output", metrics)
        _ok("run", "evaluate", *evaluate, "--holdout", run)
        clusters = ("--min-score", "0.5", "--clusters")
        _ok("run", "match", "--embeddings", embeddings, "--output", matches, "--k", "3", *clusters)
        results[root] = (
            [_read(join(run, name)) for name in ("config.json", "split.json")],
            read_embeddings(embeddings),
            {
                k: v
                for k, v in json.loads(_read(metrics)).items()
                if k not in ("embeddings", "holdout")
            },
            read_table(matches, "matches").to_pylist(),
            read_table(join(root, "matches.clusters.parquet"), "clusters").to_pylist(),
            json.loads(_read(join(root, "matches.summary.json")))["rows"],
        )
    (files, (ids, vectors), *rest), (local_files, (local_ids, local_vectors), *local_rest) = (
        results[url],
        results[str(tmp_path)],
    )
    assert files == local_files and ids == local_ids and np.array_equal(vectors, local_vectors)
    assert rest == local_rest
    fs.invalidate_cache()
    run = f"{url}/runs/{model}"
    names = {PurePosixPath(k).name for k in fs.ls(f"{base}/runs/{model}", detail=False)}
    assert names == {
        "config.json",
        "split.json",
        "best.pt",
        "last.pt",
        "training_curve.png",
        "report.html",
        "logs",
    }
    assert json.loads(_read(f"{url}/metrics.json"))["holdout"] == run
    for report in (f"{run}/report.html", f"{url}/report.html"):  # the run's, the metrics'
        page = _read(report).decode()
        assert f"{parent_of(report)}, report written" in page
        assert "pipeline-stage-" not in page and "pipeline-report-" not in page
    secrets = (*s3_env.writer, *s3_env.reader)
    for key in (
        f"{base}/runs/{model}/report.html",
        *fs.ls(f"{base}/runs/{model}/logs", detail=False),
    ):
        text = fs.cat_file(key).decode()
        assert not any(secret in text for secret in secrets), key

    resumed = _ok(
        "run",
        "train",
        model,
        "--shards",
        f"{url}/features",
        "--output",
        run,
        "--preset",
        "small",
        "--epochs",
        "2",
    )
    assert f"1 epoch(s) trained; run folder {run} (" in resumed
    assert "resumed " in resumed and "last.pt at epoch 1" in resumed
    fs.invalidate_cache()
    assert len(fs.ls(f"{base}/runs/{model}/logs", detail=False)) == 2
    if model == "livi":
        _livi_run_in_the_bucket(run, example_dir, url)


def test_encoder_states_for_a_share_of_tracks_only(
    s3_env: S3Server, example_dir: Path, example_features: Path
) -> None:
    """``encoder_states_share``: the same tables; in the shards, encoder states only for the
    tracks of the share, every other member as in a full run."""
    url = f"s3://{BUCKET}/share"
    share = ("--partition-size", "3", "--set", "encoder_states_share=0.5")
    result = run_extract(example_dir / "catalog.csv", url, *share)
    assert result.returncode == 0, result.stderr
    fs, base = url_to_fs(url)
    for folder in ("tracks", "segments"):
        for path in sorted((example_features / folder).glob("part-*.parquet")):
            assert fs.cat_file(f"{base}/{folder}/{path.name}") == path.read_bytes()
    kept = set()
    for local, remote in zip(list_shards(example_features), list_shards(url), strict=True):
        for full, sampled in zip(iter_samples(local), iter_samples(remote), strict=True):
            assert full.key == sampled.key and full.meta == sampled.meta
            track_id = full.meta["track_id"]
            expected = set(full.arrays) - ({"encoder"} - set(sampled.arrays))
            assert set(sampled.arrays) == expected
            if keeps_encoder_states(track_id, 0.5):
                kept.add(track_id)
                assert "encoder" in sampled.arrays
            else:
                assert "encoder" not in sampled.arrays
            for name, array in sampled.arrays.items():
                assert np.array_equal(array, full.arrays[name])
    all_tracks = {s.meta["track_id"] for s in iter_folder(example_features, frozenset())}
    assert kept and kept != all_tracks  # the example's ids fall on both sides

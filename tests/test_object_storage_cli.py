"""``pipeline run extract --output s3://bucket/prefix`` against a real S3-compatible server
(moto's, started by the tests on 127.0.0.1, spoken to over HTTP): the objects are the bytes of
a local run, a driver killed mid-run resumes to them, and what the store refuses is one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from fsspec.core import url_to_fs

from pipeline.io.embeddings import read_embeddings
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


@pytest.mark.parametrize("model", ["livi", "wealy"])
def test_train_embed_evaluate_and_match_read_the_bucket(
    s3_env: S3Server, example_dir: Path, example_features: Path, tmp_path: Path, model: str
) -> None:
    """Trained from the bucket's shards, embedded from them, evaluated and matched from the
    bucket's embeddings file: the same embeddings, metrics and matches as from the folder."""
    url = f"s3://{BUCKET}/read-{model}"
    fs, base = url_to_fs(url)
    for name in ("tracks", "segments", "shards"):
        fs.put(str(example_features / name), f"{base}/{name}", recursive=True)
    results = {}
    for where, features in (("local", str(example_features)), ("bucket", url)):
        run = tmp_path / where / model
        train = ("run", "train", model, "--shards", features, "--output", str(run))
        _ok(*train, "--preset", "small", "--epochs", "1")
        embeddings = str(tmp_path / where / f"{model}.parquet")
        if where == "bucket":  # written to the store, read back from it from here on
            embeddings = f"{url}/{model}.parquet"
        _ok("run", "embed", "--model", str(run), "--input", features, "--output", embeddings)
        metrics = tmp_path / where / "metrics.json"
        catalog = str(example_dir / "catalog.csv")
        evaluate = ("--embeddings", embeddings, "--catalog", catalog, "--output", str(metrics))
        _ok("run", "evaluate", *evaluate)
        matches = tmp_path / where / "matches.parquet"
        _ok("run", "match", "--embeddings", embeddings, "--output", str(matches), "--k", "3")
        results[where] = (
            read_embeddings(embeddings),
            {k: v for k, v in json.loads(metrics.read_text()).items() if k != "embeddings"},
            read_table(matches, "matches").to_pylist(),
        )
    (ids, vectors), metrics, matches = results["bucket"]
    (local_ids, local_vectors), local_metrics, local_matches = results["local"]
    assert ids == local_ids and np.array_equal(vectors, local_vectors)
    assert metrics == local_metrics and matches == local_matches


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

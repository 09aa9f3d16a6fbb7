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

import pytest
from fsspec.core import url_to_fs

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

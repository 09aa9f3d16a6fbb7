"""Outputs on a real S3-compatible server (moto's, over HTTP through s3fs): the same bytes as
a local folder, markers as the commit, the lock, and one line per thing the store refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from fsspec.core import url_to_fs

from pipeline.io.embeddings import EmbeddingsFileError, read_embeddings, write_embeddings
from pipeline.io.object_store import (
    LOCK,
    ObjectOutputDir,
    fetched,
    join,
    output_dir_for,
    parent_of,
    staged,
    staged_folder,
    with_suffix,
)
from pipeline.io.output_dir import OutputDir, OutputDirError
from pipeline.io.parquet import read_table, write_table
from pipeline.io.webdataset import (
    NoShardsError,
    ShardSample,
    index_shard,
    iter_samples,
    list_shards,
    write_shard,
)
from pipeline.report import write_report_at
from tests.s3_server import BUCKET, S3Server


def _write(out: OutputDir, index: int) -> dict[str, dict]:
    """A partition's files, written through ``out``; their records."""
    rng = np.random.default_rng(index)
    samples = [
        ShardSample(
            f"part-{index:05d}/{i:06d}",
            {"track_id": f"t{i}", "segment_index": 0},
            {"encoder": rng.standard_normal((1500, 8)).astype(np.float16)},
        )
        for i in range(3)
    ]
    rows = [
        {
            "track_id": f"t{i}",
            "audio_path": f"t{i}.wav",
            "catalog_line": i + 2,
            "status": "ok",
            "segment_count": 1,
        }
        for i in range(3)
    ]
    part = out.part_name(index)
    files = {
        f"tracks/{part}.parquet": partial(write_table, rows, "tracks"),
        f"segments/{part}.parquet": partial(write_table, [], "segments"),
        out.shard_rel(index): partial(write_shard, samples),
    }
    records = {rel: out.commit_file(rel, write) for rel, write in files.items()}
    out.write_marker(index, {"partition": index, "files": records})
    return records


def test_objects_are_the_bytes_of_a_local_folder(s3_env: S3Server, tmp_path: Path) -> None:
    local = output_dir_for(str(tmp_path / "local"))
    remote = output_dir_for(f"s3://{BUCKET}/same-bytes")
    assert isinstance(remote, ObjectOutputDir) and remote.location == f"s3://{BUCKET}/same-bytes"
    assert _write(local, 0) == _write(remote, 0)
    fs, _ = url_to_fs(remote.url)
    for rel in remote.partition_files(0):
        assert fs.cat_file(remote.key(rel)) == (local.root / rel).read_bytes()
    assert remote.existing_partitions() == [0]
    assert remote.completed_marker(0) is not None


def test_only_a_marker_whose_files_are_intact_counts(s3_env: S3Server) -> None:
    out = output_dir_for(f"s3://{BUCKET}/markers")
    _write(out, 0)
    _write(out, 1)
    out.remove(out.marker_rel(1))  # a driver killed before the commit
    fs, _ = url_to_fs(out.url)
    fs.pipe_file(out.key("shards/part-00000.tar"), b"truncated")  # not what the marker says
    fs.invalidate_cache()
    assert out.existing_partitions() == [0, 1]
    assert out.completed_marker(0) is None and out.completed_marker(1) is None
    out.write_manifest({"status": "running"})
    out.clear()
    assert out.existing_partitions() == [] and out.read_manifest() is None


def test_a_second_run_on_one_prefix_is_refused_with_the_first_runs_id(s3_env: S3Server) -> None:
    out = output_dir_for(f"s3://{BUCKET}/locked")
    with out.lock("extract-first"):
        fs, _ = url_to_fs(out.url)
        holder = json.loads(fs.cat_file(out.key(LOCK)))
        assert holder["run_id"] == "extract-first" and holder["pid"] == os.getpid()
        with pytest.raises(OutputDirError, match=r"another extraction \(run extract-first"):
            with out.lock("extract-second"):
                pass
    assert not fs.exists(out.key(LOCK))  # released
    with out.lock("extract-third"):
        pass


def test_a_killed_drivers_lock_is_taken_over(s3_env: S3Server) -> None:
    out = output_dir_for(f"s3://{BUCKET}/stale")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    fs, _ = url_to_fs(out.url)
    document = json.loads(out._lock_document("extract-killed"))  # type: ignore[attr-defined]
    fs.pipe_file(out.key(LOCK), json.dumps(document | {"pid": int(dead.stdout)}).encode())
    with out.lock("extract-resume"):
        assert json.loads(fs.cat_file(out.key(LOCK)))["run_id"] == "extract-resume"


@pytest.mark.parametrize(
    ("url", "keys", "expected"),
    [
        ("s3://no-such-bucket/features", "writer", "no such bucket s3://no-such-bucket"),
        (f"s3://{BUCKET}/wrong-keys", "wrong", "the store refused the credentials"),
        (f"s3://{BUCKET}/read-only", "reader", "no permission to write there"),
    ],
)
def test_what_the_store_refuses_is_one_line(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch, url: str, keys: str, expected: str
) -> None:
    from s3fs import S3FileSystem

    credentials = {"writer": s3_env.writer, "reader": s3_env.reader}.get(keys, ("AKIAX", "no"))
    for name, value in s3_env.env(credentials).items():
        monkeypatch.setenv(name, value)
    S3FileSystem.clear_instance_cache()
    with pytest.raises(OutputDirError) as caught:
        with output_dir_for(url).lock("extract-x"):
            pass
    message = str(caught.value)
    assert expected in message and "\n" not in message, message
    assert s3_env.writer[1] not in message and s3_env.reader[1] not in message


def test_join_keeps_urls_and_folders_apart(tmp_path: Path) -> None:
    assert join("s3://b/p/", "logs", "x.log") == "s3://b/p/logs/x.log"
    assert join(tmp_path, "logs") == str(tmp_path / "logs")
    assert type(output_dir_for(str(tmp_path))) is OutputDir
    assert with_suffix("s3://b/p/wealy.parquet", ".metrics.json") == "s3://b/p/wealy.metrics.json"
    assert with_suffix(tmp_path / "w.parquet", ".json") == tmp_path / "w.json"
    assert parent_of("s3://b/p/m.parquet") == "s3://b/p" and parent_of(tmp_path / "m") == tmp_path


def test_a_staged_folder_resumes_from_the_store_and_uploads_its_commit_last(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``fetch`` picks comes down; each sync uploads what changed (a rewrite of the same
    size too), the ``commit`` files after the others; an error in the block uploads nothing."""
    url = f"s3://{BUCKET}/staged-run"
    fs, base = url_to_fs(url)
    for name, data in (("config.json", b"{}"), ("last.pt", b"epoch 1"), ("best.pt", b"big")):
        fs.pipe_file(f"{base}/{name}", data)
    uploaded: list[str] = []
    put = fs.put_file

    def recording_put(lpath: str, rpath: str, **kwargs: object) -> None:
        uploaded.append(PurePosixPath(rpath).name)
        put(lpath, rpath, **kwargs)

    monkeypatch.setattr(fs, "put_file", recording_put)
    with staged_folder(url, {"config.json", "last.pt"}.__contains__, ("last.pt",)) as run:
        assert run.path.name == "staged-run"
        assert sorted(p.name for p in run.path.iterdir()) == ["config.json", "last.pt"]
        assert run.sync() == []
        for name in ("last.pt", "best.pt", "curve.png"):
            (run.path / name).write_bytes(b"epoch 2")
        assert run.sync() == ["best.pt", "curve.png", "last.pt"]
        (run.path / "report.html").write_text("report")
    assert uploaded == ["best.pt", "curve.png", "last.pt", "report.html"]
    assert fs.cat_file(f"{base}/last.pt") == b"epoch 2"
    with pytest.raises(RuntimeError), staged_folder(url) as run:
        (run.path / "late.json").write_text("{}")
        raise RuntimeError
    assert not fs.exists(f"{base}/late.json")


def test_fetched_copies_the_first_present_of_each_choice(s3_env: S3Server) -> None:
    url = f"s3://{BUCKET}/fetched"
    fs, base = url_to_fs(url)
    for name in ("config.json", "last.pt", "other.bin"):
        fs.pipe_file(f"{base}/{name}", name.encode())
    with fetched(url, ("config.json",), ("best.pt", "last.pt"), ("split.json",)) as folder:
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "last.pt"]
        assert (folder / "last.pt").read_bytes() == b"last.pt"


def test_a_report_in_the_store_names_its_url(s3_env: S3Server) -> None:
    """Rebuilt from the prefix's objects on local scratch; its header is the URL."""
    url = f"s3://{BUCKET}/report-header"
    fs, base = url_to_fs(url)
    keys = ("map", "map_at_10", "mr1", "hr_at_1", "hr_at_10", "arp", "random_map")
    metrics = {"embeddings": f"{url}/w.parquet", "tracks": 2, "queries": 2} | dict.fromkeys(keys, 1)
    fs.pipe_file(f"{base}/wealy.metrics.json", json.dumps(metrics).encode())
    assert write_report_at(url) == f"{url}/report.html"
    page = fs.cat_file(f"{base}/report.html").decode()
    assert f"{url}, report written" in page and "pipeline-report-" not in page


def test_shards_are_read_from_the_store_as_they_are_locally(
    s3_env: S3Server, tmp_path: Path
) -> None:
    local = output_dir_for(str(tmp_path / "local"))
    remote = output_dir_for(f"s3://{BUCKET}/readers")
    _write(local, 0)
    _write(remote, 0)
    shards = list_shards(remote.location)
    assert shards == [f"s3://{BUCKET}/readers/shards/part-00000.tar"]
    assert list_shards(f"{remote.location}/shards") == shards
    expected = list(iter_samples(local.root / local.shard_rel(0)))
    got = list(iter_samples(shards[0], frozenset({"encoder"})))
    assert [s.key for s in got] == [s.key for s in expected]
    for a, b in zip(got, expected, strict=True):
        assert a.meta == b.meta and np.array_equal(a.arrays["encoder"], b.arrays["encoder"])
    for (key, _, refs), sample in zip(index_shard(shards[0]), expected, strict=True):
        assert key == sample.key and refs["encoder"].shard == shards[0]
        assert np.array_equal(refs["encoder"].load(), sample.arrays["encoder"])
    with pytest.raises(NoShardsError, match=r"no part-\*\.tar shards"):
        list_shards(f"s3://{BUCKET}/nothing-here")


def test_tables_and_embeddings_are_read_from_the_store(s3_env: S3Server, tmp_path: Path) -> None:
    local = output_dir_for(str(tmp_path / "local"))
    remote = output_dir_for(f"s3://{BUCKET}/tables")
    _write(local, 0)
    _write(remote, 0)
    _write(remote, 1)
    assert read_table(f"{remote.location}/tracks", "tracks").num_rows == 6
    assert read_table(
        f"{remote.location}/tracks/part-00000.parquet", "tracks", ["track_id"]
    ) == read_table(local.root / "tracks/part-00000.parquet", "tracks", ["track_id"])
    vectors = {"a": np.array([0.6, 0.8], np.float32), "b": np.array([1.0, 0.0], np.float32)}
    url = f"{remote.location}/embeddings.parquet"
    with staged(url) as path:
        write_embeddings(vectors, ["b", "a"], path)
    ids, got = read_embeddings(url)
    assert ids == ["b", "a"] and np.array_equal(got, np.stack([vectors["b"], vectors["a"]]))
    with pytest.raises(EmbeddingsFileError, match="no such embeddings file"):
        read_embeddings(f"{remote.location}/missing.parquet")

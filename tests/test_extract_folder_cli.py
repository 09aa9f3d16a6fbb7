"""``pipeline run extract --input DIR``: the folder's catalog is kept in the output, skipped
files are counted, and a re-run with new files processes only those. Silent tracks are
rejected before Whisper, so these runs load no model (real LocalCluster, real CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fsspec.core import url_to_fs

from pipeline.io.catalog import read_catalog
from pipeline.io.parquet import read_table
from tests.audio_fixtures import write_float_wav
from tests.conftest import run_extract
from tests.s3_server import BUCKET, S3Server

pytestmark = pytest.mark.integration


def _silent(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    write_float_wav(target, np.zeros(16000), 16000)


def test_a_folder_run_keeps_its_catalog_and_a_rerun_adds_only_new_files(tmp_path: Path) -> None:
    music = tmp_path / "music"
    _silent(music / "Side A" / "01 one.wav")
    _silent(music / "Side B" / "02 two")  # no extension
    (music / "Side A" / "tracklist.txt").write_text("1. one\n2. two\n")
    (music / "loop").symlink_to(".")
    output = music / "features"  # inside the folder: never read as input
    extra = ("--workers", "1", "--partition-size", "2")
    first = run_extract(music, output, *extra)
    assert first.returncode == 0, first.stderr
    assert (
        f"skipped     3 file(s) of {music}: 1 not_audio, 1 output_folder, 1 symlink_loop "
        f"(listed in {output / 'input_skipped.csv'})"
    ) in first.stdout
    assert "processed   2 track(s)" in first.stdout
    catalog = read_catalog(output / "catalog.csv")
    assert [e.track_id for e in catalog] == ["Side A/01 one.wav", "Side B/02 two"]
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["catalog"]["folder"] == str(music)
    assert manifest["catalog"]["path"] == str((output / "catalog.csv").absolute())
    assert manifest["summary"]["input_skipped"] == {
        "not_audio": 1,
        "output_folder": 1,
        "symlink_loop": 1,
    }

    _silent(music / "Side C" / "03 three.wav")
    again = run_extract(music, output, *extra)
    assert again.returncode == 0, again.stderr
    assert "processed   1 track(s)" in again.stdout and "resumed     1 partition(s)" in again.stdout
    tracks = read_table(output / "tracks", "tracks").to_pylist()
    assert sorted(t["track_id"] for t in tracks) == [
        "Side A/01 one.wav",
        "Side B/02 two",
        "Side C/03 three.wav",
    ]
    assert {t["reason"] for t in tracks} == {"silent"}


def test_a_folder_without_audio_stops_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.mp3").write_text("not audio\n")
    result = run_extract(tmp_path / "docs", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'docs'}: no audio files found")
    assert "1 not_audio_despite_name" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_folder_run_into_a_bucket_keeps_its_catalog_there(
    s3_env: S3Server, tmp_path: Path
) -> None:
    music = tmp_path / "music"
    _silent(music / "01 one.wav")
    (music / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    url = f"s3://{BUCKET}/folder"
    result = run_extract(music, url, "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert f"skipped     1 file(s) of {music}: 1 not_audio (listed in {url}/input_skipped.csv)" in (
        result.stdout
    )
    fs, base = url_to_fs(url)
    fs.invalidate_cache()
    catalog = fs.cat_file(f"{base}/catalog.csv").decode()
    assert catalog.splitlines()[1].startswith(f"01 one.wav,{music / '01 one.wav'},")
    assert b"cover.jpg,not_audio," in fs.cat_file(f"{base}/input_skipped.csv")
    manifest = json.loads(fs.cat_file(f"{base}/manifest.json"))
    assert manifest["catalog"]["path"] == f"{url}/catalog.csv"
    assert manifest["catalog"]["folder"] == str(music)

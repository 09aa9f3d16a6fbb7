"""Every user mistake ends in one ``error:`` line naming the path and the fix, exit code 2.

The commands run in-process through ``pipeline.cli.main``: each case fails before any audio
is read, so no cluster or model is needed.
"""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path

import pytest

from pipeline import cli, extract_cli, run_log

CATALOG = "track_id,audio_path\nsong,song.wav\n"


def _fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.csv"
    path.write_text(CATALOG)
    return path


def _extract(catalog: Path, output: Path, *extra: str) -> list[str]:
    return ["run", "extract", "--input", str(catalog), "--output", str(output), *extra]


def test_output_that_is_a_file(capsys, catalog: Path, tmp_path: Path) -> None:
    taken = tmp_path / "features"
    taken.write_text("")
    assert "is a file; name a folder" in _fails(capsys, *_extract(catalog, taken))


def test_output_that_cannot_be_made(capsys, catalog: Path) -> None:
    err = _fails(capsys, *_extract(catalog, Path("/proc/no-such-place/features")))
    assert "/proc/no-such-place" in err and "choose" in err


def test_full_disk_names_the_path_and_the_fix(capsys, catalog: Path, tmp_path, monkeypatch):
    def full(folder: Path, job: str, log_format: str):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "logs"))

    monkeypatch.setattr(run_log, "run_log_handler", full)
    monkeypatch.setattr(extract_cli, "run_log_handler", full)
    err = _fails(capsys, *_extract(catalog, tmp_path / "out"))
    assert "No space left on device" in err and "free disk space" in err


def test_json_logs_give_the_error_as_one_json_line(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "catalog.csv"
    argv = [*_extract(missing, tmp_path / "out"), "--log-format", "json"]
    root = logging.getLogger()
    handlers = root.handlers[:]
    try:
        assert cli.main(argv) == 2
    finally:
        root.handlers[:] = handlers  # main() configured logging for this process
    (line,) = capsys.readouterr().err.strip().splitlines()
    record = json.loads(line)
    assert record["level"] == "ERROR" and "catalog not found" in record["message"]


def test_catalog_missing_or_a_folder_without_audio(capsys, tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    assert "catalog not found" in _fails(capsys, *_extract(path, tmp_path / "out"))
    path.mkdir()  # a folder is read as a folder of music (tests/test_extract_folder_cli.py)
    err = _fails(capsys, *_extract(path, tmp_path / "out"))
    assert f"{path}: no audio files found" in err


def test_catalog_in_another_encoding(capsys, tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_bytes("track_id,audio_path\ncaf\xe9,song.wav\n".encode("latin-1"))
    err = _fails(capsys, *_extract(path, tmp_path / "out"))
    assert f"{path}:2: track_id is not UTF-8" in err and "iconv" in err


def test_config_missing_or_not_yaml(capsys, catalog: Path, tmp_path: Path) -> None:
    missing = tmp_path / "settings.yaml"
    err = _fails(capsys, *_extract(catalog, tmp_path / "out", "--config", str(missing)))
    assert "config file not found" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("segment: [\n")
    err = _fails(capsys, *_extract(catalog, tmp_path / "out", "--config", str(broken)))
    assert f"{broken}: not valid YAML" in err


def test_whisper_model_folder_wrong(capsys, catalog: Path, tmp_path: Path) -> None:
    extra = ("--whisper-model", str(tmp_path))
    assert "not a CTranslate2 Whisper folder" in _fails(
        capsys, *_extract(catalog, tmp_path / "out", *extra)
    )


def test_embed_model_names_the_zero_shot_methods(capsys, tmp_path: Path) -> None:
    (tmp_path / "features" / "tracks").mkdir(parents=True)
    err = _fails(
        capsys,
        *("run", "embed", "--model", "nope", "--input", str(tmp_path / "features")),
        *("--output", str(tmp_path / "e.parquet")),
    )
    assert "whisper-avg or transcript-text" in err


def test_train_evaluate_and_search_on_missing_inputs(capsys, tmp_path: Path) -> None:
    err = _fails(
        capsys, "run", "train", "livi", "--shards", str(tmp_path), "--output", str(tmp_path / "r")
    )
    assert "no part-*.tar shards" in err
    missing = str(tmp_path / "none.parquet")
    catalog = tmp_path / "c.csv"
    catalog.write_text("track_id,audio_path,work_id\nt1,t1.wav,w\n")
    err = _fails(
        capsys,
        *("run", "evaluate", "--embeddings", missing, "--catalog", str(catalog)),
        *("--output", str(tmp_path / "m.json")),
    )
    assert "no such embeddings file" in err
    assert "no such embeddings file" in _fails(
        capsys, "search", "--embeddings", missing, "--query", "x"
    )

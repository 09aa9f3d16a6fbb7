"""``pipeline catalog DIR --output catalog.csv``: writes, reports what it skipped, never
overwrites an edited catalog by accident."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.io.catalog import read_catalog
from tests.audio_fixtures import write_float_wav


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    (root / "Side A").mkdir(parents=True)
    tone = 0.3 * np.sin(np.arange(8000) / 16000 * 2 * np.pi * 440)
    write_float_wav(root / "Side A" / "01 Song.wav", tone, 16000)
    write_float_wav(root / "no extension", tone, 16000)
    (root / "Side A" / "notes.mp3").write_text("not audio\n")
    (root / "loop").symlink_to(".")
    return root


def test_writes_the_catalog_and_says_what_it_skipped(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "catalog.csv"
    assert main(["catalog", str(folder), "--output", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"catalog     {target}  (2 tracks from {folder})" in out
    assert "skipped     2 file(s): 1 not_audio_despite_name, 1 symlink_loop" in out
    assert "Side A/notes.mp3 (named .mp3 but the content is text)" in out
    assert "pipeline run extract --input" in out
    entries = read_catalog(target)
    assert [e.track_id for e in entries] == ["Side A/01 Song.wav", "no extension"]
    assert entries[0].audio_path == str(folder / "Side A" / "01 Song.wav")


def test_an_existing_catalog_is_kept_unless_forced(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "catalog.csv"
    target.write_text("track_id,audio_path,work_id\nmine,x.wav,edited\n")
    assert main(["catalog", str(folder), "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(target) in err and "--force" in err
    assert "edited" in target.read_text()
    assert main(["catalog", str(folder), "--output", str(target), "--force"]) == 0
    assert len(read_catalog(target)) == 2


def test_a_folder_without_audio_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("nothing\n")
    target = tmp_path / "catalog.csv"
    assert main(["catalog", str(tmp_path / "empty"), "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'empty'}: no audio files found")
    assert err.count("\n") == 1 and not target.exists()


def test_tags_fill_title_and_artist(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = folder / "Side A" / "01 Song.wav"
    for name, codec in (("tagged.mp3", "libmp3lame"), ("tagged.ogg", "libvorbis")):
        tags = ["-metadata", "title=Café\nSong", "-metadata", "artist=Ünï Band"]
        command = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(source)]
        subprocess.run([*command, "-c:a", codec, *tags, str(folder / name)], check=True)
    target = tmp_path / "catalog.csv"
    assert main(["catalog", str(folder), "--output", str(target), "--tags"]) == 0
    assert "tags        title for 2, artist for 2 track(s)" in capsys.readouterr().out
    entries = {e.track_id: e for e in read_catalog(target)}
    for track_id in ("tagged.mp3", "tagged.ogg"):
        assert (entries[track_id].title, entries[track_id].artist) == ("Café Song", "Ünï Band")
    assert entries["no extension"].title is None and entries["no extension"].work_id is None

"""``pipeline make-bench`` on a tiny set: the files decode and the catalog names works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.bench_data import LANGUAGES, bench_tracks, lyric_lines, lyrics
from pipeline.config import DecodeConfig
from pipeline.io.catalog import read_catalog
from pipeline.records import DecodedAudio
from pipeline.stages.decode import decode_audio
from tests.conftest import run_cli

pytestmark = pytest.mark.timeout(120)


def test_tiny_bench_decodes_and_lists_works(tmp_path: Path) -> None:
    result = run_cli(
        "make-bench",
        "--output",
        str(tmp_path),
        *("--works", "2", "--versions-per-work", "2", "--distractors", "1", "--seed", "3"),
    )
    assert result.returncode == 0, result.stderr
    entries = read_catalog(tmp_path / "catalog.csv")
    assert [e.work_id for e in entries] == ["w000", "w000", "w001", "w001", "d000"]
    assert all(e.language in LANGUAGES for e in entries)
    expected = [t.track_id for t in bench_tracks(2, 2, 1, seed=3)]
    assert [e.track_id for e in entries] == expected
    for entry in entries:
        audio = decode_audio(entry, DecodeConfig())
        assert isinstance(audio, DecodedAudio), entry.track_id
        assert audio.samples.size > 16_000 * 10  # intro, the lines twice, outro


def test_same_seed_same_tracks_and_more_works_keep_the_first() -> None:
    assert bench_tracks(3, 3, 2, seed=0) == bench_tracks(3, 3, 2, seed=0)
    assert bench_tracks(3, 3, 0, seed=0) == bench_tracks(5, 3, 0, seed=0)[:9]
    assert bench_tracks(3, 3, 0, seed=0) != bench_tracks(3, 3, 0, seed=1)


def test_every_version_sings_its_work_lines_in_its_language() -> None:
    tracks = bench_tracks(6, 4, 0, seed=0)
    for track in tracks:
        lines = lyric_lines(np.random.default_rng([0, 0, int(track.work_id[1:])]))  # first draw
        assert track.lyrics == lyrics(lines, track.language)
        assert track.lyrics.count(".") == len(lines)
    languages = {
        w: {t.language for t in tracks if t.work_id == w} for w in {t.work_id for t in tracks}
    }
    assert any(len(found) > 1 for found in languages.values())  # some versions are translated

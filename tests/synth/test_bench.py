"""``pipeline make-bench`` on a tiny set: files decode, the catalog names works and truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.config import DecodeConfig
from pipeline.io.catalog import read_catalog
from pipeline.records import DecodedAudio
from pipeline.stages.decode import decode_audio
from pipeline.synth.bench import bench_tracks
from pipeline.synth.lyrics import LANGUAGES, lyric_lines, sentences
from pipeline.synth.truth import read_truth
from tests.conftest import run_cli

pytestmark = pytest.mark.timeout(180)


def test_tiny_bench_decodes_and_records_its_truth(tmp_path: Path) -> None:
    result = run_cli(
        "make-bench",
        "--output",
        str(tmp_path),
        *("--works", "2", "--versions-per-work", "2", "--distractors", "1", "--seed", "3"),
        *("--instrumentals", "1", "--spoken", "1"),
    )
    assert result.returncode == 0, result.stderr
    entries = read_catalog(tmp_path / "catalog.csv")
    assert [e.work_id for e in entries] == ["w000", "w000", "w001", "w001", "d000", "i000", "s000"]
    expected = [t.track_id for t in bench_tracks(2, 2, 1, seed=3, instrumentals=1, spoken=1)]
    assert [e.track_id for e in entries] == expected
    truth = read_truth(tmp_path / "catalog.csv")
    assert [truth[e.track_id].kind for e in entries] == ["sung"] * 5 + ["instrumental", "spoken"]
    for entry in entries:
        audio = decode_audio(entry, DecodeConfig())
        assert isinstance(audio, DecodedAudio), entry.track_id
        found = truth[entry.track_id]
        assert abs(audio.samples.size / 16_000 - found.duration_s) < 0.1
        if found.kind == "instrumental":
            assert found.regions == [] and found.vocal_db is None
            continue
        assert all(0 < s < e <= found.duration_s for s, e in found.regions)
        voiced_s = sum(e - s for s, e in found.regions)
        assert 0.55 <= voiced_s / found.duration_s <= 0.75  # intro, breaks and outro
        if found.kind == "sung":
            assert -6.0 <= found.vocal_db <= 6.0


def test_same_seed_same_tracks_and_more_works_keep_the_first() -> None:
    assert bench_tracks(3, 3, 2, seed=0) == bench_tracks(3, 3, 2, seed=0)
    assert bench_tracks(3, 3, 0, seed=0) == bench_tracks(5, 3, 0, seed=0)[:9]
    assert bench_tracks(3, 3, 0, seed=0) != bench_tracks(3, 3, 0, seed=1)
    assert bench_tracks(2, 2, 0, seed=0, length="full")[0].length == "full"


def test_every_version_sings_its_work_lines_in_its_language() -> None:
    tracks = bench_tracks(6, 4, 0, seed=0)
    for track in tracks:
        rng = np.random.default_rng([0, 0, int(track.work_id[1:])])
        lines = lyric_lines(rng, len(track.lines))  # the work's first draw
        assert track.lines == sentences(lines, track.language)
        assert track.language in LANGUAGES
    languages = {
        w: {t.language for t in tracks if t.work_id == w} for w in {t.work_id for t in tracks}
    }
    assert any(len(found) > 1 for found in languages.values())  # some versions are translated

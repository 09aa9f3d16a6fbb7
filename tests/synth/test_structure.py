"""Song form: the voice-free share, the sections and the voiced spans, for many draws."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pipeline.synth.structure import Song, plan_song

pytestmark = pytest.mark.timeout(30)


def _check(song: Song, n_lines: int) -> None:
    regions = song.regions()
    assert 0.30 <= song.voice_free_share() <= 0.40
    assert all(0 < s < e <= song.duration_s for s, e in regions)
    assert all(e1 < s2 for (_, e1), (s2, _) in itertools.pairwise(regions))
    assert {p.line for p in song.placements} == set(range(n_lines))
    names = [s.name for s in song.sections]
    assert names[0] == "intro" and names[-1] == "outro"
    assert song.sections[0].start_s == 0.0 and song.sections[-1].end_s == song.duration_s
    for a, b in itertools.pairwise(song.sections):
        assert a.end_s == pytest.approx(b.start_s)
    assert regions[0][0] >= song.sections[1].start_s  # nothing sung in the intro
    assert regions[-1][1] <= song.sections[-1].start_s  # nor in the outro


@pytest.mark.parametrize("seed", range(20))
def test_short_song_is_intro_verse_break_verse_outro(seed: int) -> None:
    rng = np.random.default_rng(seed)
    durations = rng.uniform(2.0, 5.0, size=4).tolist()
    song = plan_song(durations, "short", float(rng.integers(80, 141)), rng)
    _check(song, 4)
    assert [s.name for s in song.sections] == ["intro", "verse", "break", "verse", "outro"]
    assert 25.0 < song.duration_s < 60.0


@pytest.mark.parametrize("seed", range(20))
def test_full_song_repeats_verses_and_choruses_for_three_to_four_minutes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    durations = rng.uniform(2.0, 5.0, size=4).tolist()
    song = plan_song(durations, "full", float(rng.integers(80, 141)), rng)
    _check(song, 4)
    names = [s.name for s in song.sections]
    assert names.count("verse") >= 2 and names.count("chorus") >= 2 and "break" in names
    assert 180.0 <= song.duration_s <= 240.0


def test_unknown_length_is_refused() -> None:
    with pytest.raises(ValueError, match="length"):
        plan_song([3.0], "medium", 100, np.random.default_rng(0))

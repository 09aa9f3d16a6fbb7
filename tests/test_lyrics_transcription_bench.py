"""The lyrics benchmark's word error rate on hand-written strings; its medians and
leave-one-out view on hand-built rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.lyrics_transcription import (
    find_songs,
    leave_one_out,
    median_rows,
    normalise_words,
    pooled,
    word_errors,
)


def test_normalisation_lowers_deletes_apostrophes_and_splits_on_punctuation() -> None:
    assert normalise_words("J'te retiendrais PAS, t'es là… «Guerre»-fête!") == [
        "jte",
        "retiendrais",
        "pas",
        "tes",
        "là",
        "guerre",
        "fête",
    ]
    assert normalise_words("Veränderung\u2019s\n\n  1999") == ["veränderungs", "1999"]
    assert normalise_words("  ¿?!  ") == []


def test_word_errors_count_substitutions_deletions_insertions_and_hits() -> None:
    reference = "un coup c'est la guerre un coup c'est la fête".split()
    assert word_errors(reference, reference).edits == 0
    assert word_errors(reference, reference).recall == 1.0
    said = "un coup c'est la guerre c'est la fête ouais".split()  # 2 deleted, 1 inserted
    errors = word_errors(reference, said)
    assert (errors.edits, errors.hits) == (3, 8)
    assert errors.wer == pytest.approx(0.3)
    assert errors.recall == pytest.approx(0.8)
    substituted = word_errors(["a", "b", "c"], ["a", "x", "c"])
    assert (substituted.edits, substituted.hits) == (1, 2)
    assert word_errors(["a", "b"], []).wer == 1.0
    assert word_errors([], ["a"]).wer == 0.0  # no lyrics: nothing to score


def test_find_songs_pairs_audio_with_its_lyrics(tmp_path: Path) -> None:
    for name in ("one.mp3", "one.txt", "two.flac", "notes.txt", "three.wav"):
        (tmp_path / name).write_bytes(b"")
    assert [audio.name for audio, _ in find_songs(tmp_path)] == ["one.mp3"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match=r"no NAME\.mp3"):
        find_songs(tmp_path / "empty")


def _row(method: str, song: str, edits: int, lyric_words: int = 100, **extra: Any) -> dict:
    """A hand-built benchmark row: WER and recall follow from ``edits``."""
    figures = {"wer": edits / lyric_words, "recall": 1 - edits / lyric_words, "words": 90}
    return {
        "method": method,
        "song": song,
        "edits": edits,
        "lyric_words": lyric_words,
        "seconds": 10.0,
        **figures,
        **extra,
    }


def test_median_rows_and_pooled_take_the_median_of_the_runs() -> None:
    runs = [  # A's three runs on two songs; 'b' has its bad run first
        _row("A", "a", 40, repeat=0, seconds=30.0),
        _row("A", "b", 90, repeat=0),
        _row("A", "a", 60, repeat=1, seconds=20.0),
        _row("A", "b", 30, repeat=1),
        _row("A", "a", 50, repeat=2, seconds=25.0),
        _row("A", "b", 50, repeat=2),
        _row("pipeline:default", "a", 45),
        _row("pipeline:default", "b", 55),
    ]
    per_song = {(r["method"], r["song"]): r for r in median_rows(runs)}
    assert per_song[("A", "a")]["edits"] == 50
    assert per_song[("A", "a")]["wer"] == pytest.approx(0.5)
    assert per_song[("A", "a")]["seconds"] == 25.0
    assert per_song[("A", "b")]["recall"] == pytest.approx(0.5)
    assert per_song[("A", "a")]["runs"] == 3
    assert per_song[("pipeline:default", "b")]["runs"] == 1
    summary = {r["method"]: r for r in pooled(runs)}
    # runs pooled: (40+90)/200 = 0.65, (60+30)/200 = 0.45, (50+50)/200 = 0.5 -> median 0.5
    assert summary["A"]["pooled_wer"] == pytest.approx(0.5)
    assert summary["A"]["runs"] == 3
    assert summary["pipeline:default"]["pooled_wer"] == pytest.approx(0.5)
    assert summary["pipeline:default"]["runs"] == 1


def test_leave_one_out_chooses_on_the_other_songs_and_counts_choices() -> None:
    songs = ("s1", "s2", "s3")
    edits = {  # 'spiky' is far best on s1 only; 'steady' is best on the other two
        "pipeline:default": (50, 50, 50),
        "pipeline:spiky": (0, 60, 60),
        "pipeline:steady": (45, 40, 40),
    }
    rows = [_row(m, s, e) for m, es in edits.items() for s, e in zip(songs, es, strict=True)]
    held_out, chosen_on = leave_one_out(rows, list(edits))
    by_song = {r["held_out"]: r for r in held_out}
    # s1 held out: on s2+s3 steady pools 0.40, default 0.50, spiky 0.60
    assert by_song["s1"]["chosen"] == "pipeline:steady"
    assert by_song["s1"]["others_pooled_wer"] == pytest.approx(0.4)
    assert by_song["s1"]["wer"] == pytest.approx(0.45)
    assert by_song["s1"]["recall"] == pytest.approx(0.55)
    # s2 held out: on s1+s3 spiky pools 0.30, steady 0.425
    assert by_song["s2"]["chosen"] == "pipeline:spiky"
    assert by_song["s2"]["wer"] == pytest.approx(0.6)
    assert by_song["s3"]["chosen"] == "pipeline:spiky"
    assert chosen_on == [
        {"method": "pipeline:default", "chosen_on": 0},
        {"method": "pipeline:spiky", "chosen_on": 2},
        {"method": "pipeline:steady", "chosen_on": 1},
    ]


def test_leave_one_out_pools_by_lyric_words_and_breaks_ties_by_order() -> None:
    rows = [  # equal WER everywhere: the first candidate listed wins every song
        _row(m, s, 20) for m in ("pipeline:b", "pipeline:a") for s in ("x", "y")
    ]
    held_out, chosen_on = leave_one_out(rows, ["pipeline:b", "pipeline:a"])
    assert {r["chosen"] for r in held_out} == {"pipeline:b"}
    assert [c["chosen_on"] for c in chosen_on] == [2, 0]
    # a long song weighs more than a short one when pooled
    rows = [
        _row("pipeline:long", "short", 10, lyric_words=10),  # WER 1.0 on 10 words
        _row("pipeline:long", "long", 100, lyric_words=1000),  # WER 0.1 on 1000 words
        _row("pipeline:short", "short", 0, lyric_words=10),
        _row("pipeline:short", "long", 300, lyric_words=1000),
        _row("pipeline:long", "third", 0),
        _row("pipeline:short", "third", 0),
    ]
    held_out, _ = leave_one_out(rows, ["pipeline:short", "pipeline:long"])
    third = next(r for r in held_out if r["held_out"] == "third")
    assert third["chosen"] == "pipeline:long"  # 110/1010 against 300/1010
    assert third["others_pooled_wer"] == pytest.approx(110 / 1010, abs=1e-3)


def test_leave_one_out_refuses_a_candidate_missing_a_song() -> None:
    rows = [_row("pipeline:a", "x", 1), _row("pipeline:a", "y", 1), _row("pipeline:b", "x", 1)]
    with pytest.raises(ValueError, match="pipeline:b"):
        leave_one_out(rows, ["pipeline:a", "pipeline:b"])
    assert leave_one_out([_row("pipeline:a", "x", 1)], ["pipeline:a"]) == ([], [])

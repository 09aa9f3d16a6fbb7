"""The lyrics benchmark's word error rate on hand-written strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.lyrics_transcription import find_songs, normalise_words, word_errors


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

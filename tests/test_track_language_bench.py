"""The track-language benchmark's counts on hand-built rows, and its catalog without language."""

from __future__ import annotations

from pathlib import Path

from benchmarks.track_language import language_row, truth, unlabelled_catalog


def test_counts_wrong_languages_unsung_and_textless_sung_tracks() -> None:
    languages = {"a-en": "en", "b-es": "es", "c-fr": "fr", "d-it": "it"}
    ok = {"status": "ok", "reason": None}
    tracks = [
        {"track_id": "a-en", "language": "en", **ok},
        {"track_id": "b-es", "language": "th", **ok},  # decoded in Thai, no text target
        {"track_id": "c-fr", "language": "hu", "status": "ok", "reason": "no_singing"},
        {"track_id": "d-it", "language": "it", **ok},
    ]
    segments = [
        {"track_id": "a-en", "singing": "sung", "text_embedding": [0.1]},
        {"track_id": "b-es", "singing": "sung", "text_embedding": None},
        {"track_id": "c-fr", "singing": "low_confidence", "text_embedding": None},
        {"track_id": "d-it", "singing": "few_words", "text_embedding": None},
        {"track_id": "d-it", "singing": "sung", "text_embedding": [0.2]},
    ]
    row = language_row(languages, tracks, segments)
    assert row == {
        "tracks": 4,
        "sung_tracks": 4,
        "wrong_language": 2,
        "no_singing": 1,
        "sung_without_text": 1,
        "wrong_language_ids": "b-es:th c-fr:hu",
        "no_singing_ids": "c-fr",
    }


def test_the_catalog_copy_drops_language_and_truth_keeps_sung_tracks(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "track_id,audio_path,work_id,language,kind\n"
        "w0-v0-fr,audio/a.wav,w0,fr,sung\n"
        "i0,audio/b.wav,i0,,instrumental\n",
        encoding="utf-8",
    )
    copy = unlabelled_catalog(catalog)
    assert copy.parent == catalog.parent  # audio paths stay relative to the same folder
    assert copy.read_text(encoding="utf-8").splitlines() == [
        "track_id,audio_path,work_id,kind",
        "w0-v0-fr,audio/a.wav,w0,sung",
        "i0,audio/b.wav,i0,instrumental",
    ]
    assert truth(catalog) == {"w0-v0-fr": "fr"}

"""The report's languages section on hand-built rows: given beside detected and decoded."""

from pathlib import Path

import pyarrow as pa

from pipeline.report.extract import languages_section
from tests.report.page import read_page

TRACKS = [  # given fr, heard en, decoded fr; nothing given; given es and heard es; rejected
    {"status": "ok", "catalog_language": "fr", "language": "fr", "detected_language": "en"},
    {"status": "ok", "catalog_language": None, "language": "en", "detected_language": "en"},
    {"status": "ok", "catalog_language": "es", "language": "es", "detected_language": "es"},
    {"status": "rejected", "catalog_language": "de", "language": None, "detected_language": None},
]
SUNG = pa.table(
    {"language": ["fr", "fr", "en", "es"], "detected_language": ["en", "en", "en", None]}
)


def _rows(tmp_path: Path, forced: str | None) -> tuple[dict[str, dict[str, int]], str]:
    page_file = tmp_path / "languages.html"
    section = languages_section(TRACKS, SUNG, forced)
    page_file.write_text(f"<!DOCTYPE html>{section}")
    rows = read_page(page_file).rows("languages")
    return {r.pop("language"): {k: int(v) for k, v in r.items()} for r in rows}, section


def test_given_languages_beside_detected_and_decoded(tmp_path: Path) -> None:
    rows, section = _rows(tmp_path, None)
    assert rows["fr"] == {
        "ok tracks given": 1,
        "ok tracks detected": 0,
        "ok tracks decoded": 1,
        "sung windows decoded": 2,
        "sung windows detected": 0,
    }
    assert rows["en"]["ok tracks given"] == 0 and rows["en"]["ok tracks detected"] == 2
    assert rows["en"]["sung windows detected"] == 3
    assert rows["es"]["ok tracks given"] == rows["es"]["ok tracks detected"] == 1
    assert "de" not in rows  # a rejected track's row counts nowhere
    assert "1 ok track(s) given a language other than the one detected" in section


def test_language_forced_for_the_run_is_every_tracks_given_one(tmp_path: Path) -> None:
    rows, section = _rows(tmp_path, "fr")
    assert rows["fr"]["ok tracks given"] == 3
    assert "3 ok track(s) given a language other than the one detected" in section

"""The page builder: text is escaped, numbers are formatted one way, plots are inline SVG."""

from __future__ import annotations

from pathlib import Path

from pipeline.report import html, plots
from tests.report.page import read_page


def test_page_escapes_text_and_formats_numbers(tmp_path: Path) -> None:
    error = "OSError: <no space> & 'quotes'"
    rows = [("part-1", 3, 0.123456, None, error), ("part-2", 0, 2.0, 1.5, "")]
    svg = plots.histogram([1, 2, 2, 3], "words")
    sections = [
        html.section("one", "Tables & plots", [html.table(list("abcde"), rows, "t"), svg]),
        html.section("two", "Notes", [html.paragraph("<not a tag>", note=True)]),
    ]
    page_file = tmp_path / "report.html"
    page_file.write_text(html.document("Run <x>", [], sections), encoding="utf-8")
    page = read_page(page_file)
    assert page.sections == ["one", "two"] and page.titles["one"] == "Tables & plots"
    assert page.rows("t") == [
        {"a": "part-1", "b": "3", "c": "0.1235", "d": "-", "e": error},
        {"a": "part-2", "b": "0", "c": "2", "d": "1.5", "e": ""},
    ]
    assert page.svgs == 1


def test_svg_has_no_prolog_or_metadata() -> None:
    svg = plots.bar_chart(["ok", "rejected: silent"], [3, 1], "tracks")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<metadata>" not in svg and "<?xml" not in svg and "<!DOCTYPE" not in svg

"""The page builder: text is escaped, numbers are formatted one way, plots are inline SVG."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    ("value", "text"),
    [(41.66, "41.7"), (0.012345, "0.0123"), (123456.0, "123000"), (2.0, "2"), (99.96, "100")],
)
def test_rates_show_three_significant_figures(value: float, text: str) -> None:
    assert html.cell_text(html.significant(value)) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (4.24, "4.2 s"),
        (42.4, "42 s"),
        (192.4, "3 min 12 s"),
        (7500.0, "2 h 05 min"),
        (90000.0, "1 d 1 h"),
        (None, "-"),
    ],
)
def test_times_show_as_people_say_them(seconds: float | None, text: str) -> None:
    assert html.cell_text(html.duration(seconds)) == text


def test_rounded_quantities_are_right_aligned_like_numbers() -> None:
    row = (html.duration(192.4), html.significant(18.71), "extract-1")
    cells = html.table(["wall time", "tracks per minute", "run"], [row], "runs")
    assert cells.count('class="number"') == 2

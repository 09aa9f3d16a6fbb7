"""The README's measurement headlines come from their pages: every figure of a headline in the
README's measurement table is printed on the docs page (or section) the row links to, and that
page names the benchmark command that measures it. A headline rewritten without its page, or a
page re-measured without its headline, fails here."""

from __future__ import annotations

import re

import pytest

from tests.test_readme import README, _slug

# Decimals (0.533, x1.16), thousands (2,853,891), percentages (95.5%) and integers of two or
# more digits (272, 33): a single digit ("5-minute", "1M") says too little to check.
FIGURE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?%?|\d+\.\d+%?|\d{2,}%?|\d%")
BENCHMARK_COMMAND = re.compile(r"python -m benchmarks\.\w+")


def measurement_rows(readme: str) -> list[tuple[str, str]]:
    """(link, headline) per row of the table under the README's ``## Measurements``."""
    section = readme.split("\n## Measurements\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        link = re.match(r"\[[^\]]+\]\(([^)\s]+)\)", cells[0])
        if link:
            rows.append((link.group(1), cells[-1]))
    return rows


def figures(headline: str) -> list[str]:
    """The figures a headline quotes, in order."""
    return FIGURE.findall(headline)


def section(markdown: str, anchor: str) -> str:
    """The text under the heading whose anchor is ``anchor``, up to the next heading of the
    same or a higher level; the whole page without an anchor."""
    if not anchor:
        return markdown
    lines = markdown.splitlines()
    for start, line in enumerate(lines):
        heading = re.match(r"^(#+) (.*)$", line)
        if heading and _slug(heading.group(2)) == anchor:
            level = len(heading.group(1))
            end = next(
                (
                    i
                    for i in range(start + 1, len(lines))
                    if re.match(rf"^#{{1,{level}}} ", lines[i])
                ),
                len(lines),
            )
            return "\n".join(lines[start:end])
    raise AssertionError(f"no heading with anchor #{anchor}")


def printed(figure: str, text: str) -> bool:
    """Whether ``figure`` occurs in ``text`` as a whole number: 0.98 is not in 0.983."""
    return re.search(rf"(?<![\d.,]){re.escape(figure)}(?![\d]|[.,]\d)", text) is not None


def missing_figures(headline: str, page: str) -> list[str]:
    return [f for f in figures(headline) if not printed(f, page)]


ROWS = measurement_rows(README.read_text(encoding="utf-8"))


def test_the_table_has_its_rows() -> None:
    assert len(ROWS) >= 8
    assert all(link.startswith("docs/") for link, _ in ROWS)


@pytest.mark.parametrize(("link", "headline"), ROWS, ids=[link for link, _ in ROWS])
def test_each_headline_figure_is_printed_on_its_page(link: str, headline: str) -> None:
    path, _, anchor = link.partition("#")
    page = section((README.parent / path).read_text(encoding="utf-8"), anchor)
    missing = missing_figures(headline, page)
    assert not missing, f"{link}: the headline quotes {missing}, which the page does not print"
    assert BENCHMARK_COMMAND.search(page), f"{link}: no `python -m benchmarks.NAME` command"


def test_figures_are_found_whole() -> None:
    headline = "WER 0.533 (faster-whisper 0.565-0.674), 2,853,891 bytes, x1.16, 95.5% and 272 s"
    assert figures(headline) == ["0.533", "0.565", "0.674", "2,853,891", "1.16", "95.5%", "272"]
    assert figures("one 5-minute track, 1M tracks") == []
    assert printed("0.98", "cov. 0.98.") and printed("0.98", "(0.98)")
    assert not printed("0.98", "0.983") and not printed("1.16", "x1.165")
    assert not printed("272", "1,272") and not printed("3.0", "13.0")


def test_a_headline_its_page_does_not_print_is_caught() -> None:
    page = "# Page\n\nMAP 0.509 against 0.431 (2026-12-04).\n"
    assert missing_figures("MAP 0.509 against 0.431", page) == []
    assert missing_figures("MAP 0.523 against 0.431, 1.64x", page) == ["0.523", "1.64"]


def test_a_section_ends_at_the_next_heading_of_its_level() -> None:
    page = "# T\n## A\na 0.1\n### A.1\nb 0.2\n## B\nc 0.3\n"
    assert printed("0.2", section(page, "a")) and not printed("0.3", section(page, "a"))
    with pytest.raises(AssertionError, match="#c"):
        section(page, "c")

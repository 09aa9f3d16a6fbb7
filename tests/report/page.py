"""Read a report back with the standard library's HTML parser: check that every element
closes, in order, and collect its sections and tables for the tests to compare."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

EXTERNAL = re.compile(r"""(src|href)\s*=\s*["'](https?:|//)""")  # namespaces are not loads
VOID = frozenset({"meta", "br", "hr", "img", "link", "input", "col", "wbr"})


@dataclass
class Page:
    sections: list[str] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)
    tables: dict[str, list[list[str]]] = field(default_factory=dict)  # header row first
    svgs: int = 0

    def rows(self, table_id: str) -> list[dict[str, str]]:
        """The table's body rows, keyed by its header."""
        header, *body = self.tables[table_id]
        return [dict(zip(header, row, strict=True)) for row in body]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.open: list[str] = []
        self.table: str | None = None
        self.section: str | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        self.open.append(tag)
        attributes = dict(attrs)
        if tag == "section":
            self.section = attributes["id"]
            self.page.sections.append(self.section)
        elif tag == "table":
            self.table = attributes["id"]
            assert self.table not in self.page.tables, f"two tables {self.table}"
            self.page.tables[self.table] = []
        elif tag == "tr" and self.table is not None:
            self.page.tables[self.table].append([])
        elif tag in ("td", "th", "h2"):
            self.cell = []
        elif tag == "svg":
            self.page.svgs += 1

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        if tag in ("td", "th") and self.table is not None and self.cell is not None:
            self.page.tables[self.table][-1].append("".join(self.cell))
            self.cell = None
        elif tag == "h2" and self.section is not None and self.cell is not None:
            self.page.titles[self.section] = "".join(self.cell)
            self.cell = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def read_page(path: Path) -> Page:
    """The parsed report; fails if a tag is left open or closed out of order."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>"), text[:40]
    assert "<script" not in text and "<link" not in text, "a report loads nothing"
    assert not EXTERNAL.search(text), EXTERNAL.search(text)
    reader = _Reader()
    reader.feed(text)
    reader.close()
    assert reader.open == [], f"unclosed: {reader.open}"
    return reader.page

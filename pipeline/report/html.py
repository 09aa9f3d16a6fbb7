"""A static HTML page built from escaped parts: no template engine, no script, no network.

Every section is ``<section id=...>`` with an ``<h2>``; every table has a header row, so a
reader (or a test) finds a figure by section and column name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0.5em 0; } figure svg { max-width: 100%; height: auto; }
p.note { color: #555; }
"""


def cell_text(value: Any) -> str:
    """How a table shows a value: floats to 4 decimals without trailing zeros, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for value in row:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            css = ' class="number"' if number else ""
            cells.append(f"<td{css}>{escape(cell_text(value))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table id="{escape(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def paragraph(text: str, note: bool = False) -> str:
    css = ' class="note"' if note else ""
    return f"<p{css}>{escape(text)}</p>"


def figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def section(section_id: str, title: str, parts: Sequence[str]) -> str:
    return f'<section id="{escape(section_id)}"><h2>{escape(title)}</h2>{"".join(parts)}</section>'


def document(title: str, intro: Sequence[str], sections: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{''.join(intro)}{''.join(sections)}</body></html>\n"
    )

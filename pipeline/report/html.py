"""A static HTML page built from escaped parts: no template engine, no script, no network.

Every section is ``<section id=...>`` with an ``<h2>``; every table has a header row, so a
reader (or a test) finds a figure by section and column name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True)
class Quantity:
    """A number already written for people (``3 min 12 s``, ``41.7``); right-aligned in a
    table like the numbers it stands for."""

    text: str


def significant(value: float | None, digits: int = 3) -> Quantity | None:
    """``value`` to ``digits`` significant figures, never in exponent notation, without
    trailing zeros: 41.66 -> 41.7, 0.012345 -> 0.0123, 123456 -> 123000, 2.0 -> 2."""
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return Quantity("0")
    decimals = digits - 1 - math.floor(math.log10(abs(value)))
    text = f"{round(value, decimals):.{max(decimals, 0)}f}"
    return Quantity(text.rstrip("0").rstrip(".") if "." in text else text)


def duration(seconds: float | None) -> Quantity | None:
    """Seconds as people say them: ``4.2 s``, ``42 s``, ``3 min 12 s``, ``2 h 05 min``,
    ``1 d 3 h``; the last unit rounded."""
    if seconds is None or not math.isfinite(seconds):
        return None
    if seconds < 9.95:
        return Quantity(f"{seconds:.1f} s")
    whole = round(seconds)
    if whole < 60:
        return Quantity(f"{whole} s")
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return Quantity(f"{minutes} min {rest} s")
    minutes = round(seconds / 60)
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return Quantity(f"{hours} h {rest:02d} min")
    days, hours = divmod(round(seconds / 3600), 24)
    return Quantity(f"{days} d {hours} h")


def timestamp(iso: str | None) -> str | None:
    """An ISO 8601 time as ``2026-12-03 13:01:48``, to the second, in its own zone."""
    if not iso:
        return None
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def cell_text(value: Any) -> str:
    """How a table shows a value: floats to 4 decimals without trailing zeros, None as a dash,
    a ``Quantity`` as written."""
    if value is None:
        return "-"
    if isinstance(value, Quantity):
        return value.text
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for value in row:
            number = isinstance(value, int | float | Quantity) and not isinstance(value, bool)
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


def subheading(text: str) -> str:
    return f"<h3>{escape(text)}</h3>"


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

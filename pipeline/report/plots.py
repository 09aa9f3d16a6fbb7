"""Plots as inline SVG, so the report is one file that opens anywhere, offline."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def new_figure(width_in: float = 6.4, height_in: float = 3.2) -> Figure:
    from matplotlib.figure import Figure  # no pyplot: no global state, no screen needed

    return Figure(figsize=(width_in, height_in))


def to_svg(figure: Figure) -> str:
    """The figure as an ``<svg>`` element: the XML prolog, DOCTYPE and RDF metadata dropped."""
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return METADATA.sub("", text[text.index("<svg") :])


def bar_chart(labels: Sequence[str], counts: Sequence[float], ylabel: str) -> str:
    figure = new_figure()
    axis = figure.subplots()
    axis.bar(range(len(labels)), counts, color="C0")
    axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axis.set_ylabel(ylabel)
    return to_svg(figure)


def histogram(values: Sequence[float], xlabel: str, bins: int = 20) -> str:
    figure = new_figure()
    axis = figure.subplots()
    axis.hist(values, bins=bins, color="C0")
    axis.set_xlabel(xlabel)
    axis.set_ylabel("count")
    return to_svg(figure)

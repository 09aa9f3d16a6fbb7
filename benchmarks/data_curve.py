"""Test MAP against the amount of training data: what more works buy LIVI and WEALY.

Reads the JSON of ``benchmarks.retrieval`` runs that differ in ``--train-works`` (and
``--livi-centre``), on the same test side, and draws each trained method's MAP with its 95%
bootstrap interval per train side, the zero-shot methods as flat lines. Prints the table and
writes JSON and the PNG to ``benchmarks/results/``.

    .venv/bin/python -m benchmarks.data_curve benchmarks/results/retrieval-*-works*.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, print_table, write_json

TRAINED = ("LIVI", "WEALY")
ZERO_SHOT = ("whisper-avg", "transcript-text")


def curve_rows(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, train works): MAP and interval; a centred LIVI is its own method."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for payload in payloads:
        if any(payload["args"].get(f"{m}_set", "[]") != "[]" for m in ("livi", "wealy")):
            continue  # a schedule of benchmarks.schedules, not the default one
        works = int(payload["args"]["train_works"])
        centred = payload["args"].get("livi_centre") == "True"
        for row in payload["rows"]:
            name = row["method"]
            if name == "LIVI" and centred:
                name = "LIVI, centred targets"
            elif centred or name not in TRAINED + ZERO_SHOT:
                continue  # the centred run's other rows repeat the plain run's
            rows[(name, works)] = {
                "method": name,
                "train_works": works,
                "MAP": row["MAP"],
                "MAP_95": row["MAP_95"],
                "HR@1": row["HR@1"],
            }
    return sorted(rows.values(), key=lambda r: (r["method"], r["train_works"]))


def draw(rows: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0))
    axis = figure.subplots()
    ticks = sorted({r["train_works"] for r in rows})
    zero_shot = {r["method"]: r["MAP"] for r in rows if r["method"] in ZERO_SHOT}
    for label, value, style, color in (
        ("transcript-text (zero-shot)", zero_shot["transcript-text"], "--", "black"),
        ("whisper-avg (zero-shot)", zero_shot["whisper-avg"], "--", "grey"),
        ("LIVI target: 95% of transcript-text", 0.95 * zero_shot["transcript-text"], ":", "C0"),
        ("WEALY target: whisper-avg + 0.10", zero_shot["whisper-avg"] + 0.10, ":", "C2"),
    ):
        axis.axhline(value, linestyle=style, color=color, lw=1)
        axis.annotate(label, (ticks[0], value), va="bottom", fontsize=8)
    for name in sorted({r["method"] for r in rows} - set(ZERO_SHOT)):
        points = [r for r in rows if r["method"] == name]
        works = [r["train_works"] for r in points]
        low = [r["MAP"] - r["MAP_95"][0] for r in points]
        high = [r["MAP_95"][1] - r["MAP"] for r in points]
        axis.errorbar(works, [r["MAP"] for r in points], yerr=[low, high], marker="o", label=name)
    axis.set_xscale("log", base=2)
    axis.set_xticks(ticks, [str(t) for t in ticks])
    axis.minorticks_off()
    axis.set_xlabel("training works (2 versions each)")
    axis.set_ylabel("test MAP, 150 queries (95% bootstrap)")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)


def summarise_runs(
    runs: list[Path],
    rows_of: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    draw_rows: Callable[[list[dict[str, Any]], Path], None],
    name: str,
) -> None:
    """Rows from the JSON of ``benchmarks.retrieval`` runs: printed, drawn to ``name``.png and
    written to ``name``.json under ``benchmarks/results/``."""
    rows = rows_of([json.loads(path.read_text()) for path in runs])
    print_table(rows)
    image = RESULTS / f"{name}.png"
    draw_rows(rows, image)
    print(f"plot: {image}")
    payload = {"runs": [str(path) for path in runs], "rows": rows}
    print(f"json: {write_json(name, payload)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="JSON of benchmarks.retrieval runs")
    args = parser.parse_args()
    summarise_runs(args.runs, curve_rows, draw, "retrieval-data-curve")


if __name__ == "__main__":
    main()

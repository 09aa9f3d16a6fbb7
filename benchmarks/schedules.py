"""Test MAP of each training schedule: which lever moves LIVI and WEALY on small data.

Reads the JSON of ``benchmarks.retrieval`` runs on the same test side that differ in their
training settings (``--livi-set``, ``--wealy-set``, batch, learning rate, ...), and draws each
trained row's MAP with its 95% bootstrap interval, one line per schedule, beside the zero-shot
methods and the targets. Prints the table and writes JSON and the PNG to
``benchmarks/results/``.

    .venv/bin/python -m benchmarks.schedules benchmarks/results/retrieval-100-works*.json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmarks.data_curve import TRAINED, summarise_runs

TARGETS = {"LIVI": ("transcript-text", 0.95, 0.0), "WEALY": ("whisper-avg", 1.0, 0.10)}


def schedule_rows(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, train works, schedule): MAP, interval, HR@1; repeated schedules
    (a run that changed only the other model) count once."""
    rows: dict[tuple[str, int, str], dict[str, Any]] = {}
    for payload in payloads:
        works = int(payload["args"]["train_works"])
        by_method = {row["method"]: row for row in payload["rows"]}
        for model in TRAINED:
            row = by_method[model]
            reference, share, plus = TARGETS[model]
            rows[(model, works, row["trained"])] = {
                "model": model,
                "train_works": works,
                "schedule": row["trained"],
                "MAP": row["MAP"],
                "MAP_95": row["MAP_95"],
                "HR@1": row["HR@1"],
                reference: by_method[reference]["MAP"],
                "target": round(share * by_method[reference]["MAP"] + plus, 3),
            }
    return sorted(rows.values(), key=lambda r: (r["model"], r["train_works"], r["MAP"]))


def draw(rows: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 1.2 + 0.35 * len(rows)))
    axes = figure.subplots(
        len(TRAINED),
        1,
        sharex=True,
        height_ratios=[max(1, sum(r["model"] == m for r in rows)) for m in TRAINED],
    )
    for axis, model in zip(axes, TRAINED, strict=True):
        points = [r for r in rows if r["model"] == model]
        if not points:
            continue
        y = range(len(points))
        low = [r["MAP"] - r["MAP_95"][0] for r in points]
        high = [r["MAP_95"][1] - r["MAP"] for r in points]
        axis.errorbar([r["MAP"] for r in points], y, xerr=[low, high], fmt="o", color="C0")
        labels = [f"{r['train_works']} works: {r['schedule'].split('; ', 1)[-1]}" for r in points]
        axis.set_yticks(list(y), labels, fontsize=7)
        reference = TARGETS[model][0]
        axis.axvline(points[0][reference], linestyle="--", color="grey", label=reference)
        axis.axvline(points[0]["target"], linestyle=":", color="C3", label="target")
        axis.set_title(model, fontsize=9, loc="left")
        axis.legend(loc="lower right", fontsize=7)
    axes[-1].set_xlabel("test MAP, 150 queries (95% bootstrap)")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="JSON of benchmarks.retrieval runs")
    parser.add_argument("--name", default="retrieval-schedules", help="of the JSON and PNG")
    args = parser.parse_args()
    summarise_runs(args.runs, schedule_rows, draw, args.name)


if __name__ == "__main__":
    main()

"""The training sections of a run report: the epochs the checkpoint's history holds (train
loss, validation score, which epoch ``best.pt`` keeps) as a table and as curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.io.run_dir import LAST, load_checkpoint, read_run_config
from pipeline.report import html, plots
from pipeline.report.curve import training_curve_figure

DEFAULT_METRIC = "validation score"  # checkpoints written before the history named its metric


def epochs_section(kind: str, history: list[dict[str, Any]], title: str) -> str:
    metric = history[-1].get("metric", DEFAULT_METRIC) if history else DEFAULT_METRIC
    # "written" on each epoch that improved; the last of them is what best.pt holds
    written = {True: "written", False: ""}
    rows = [
        (h["epoch"], h["train_loss"], h["val_score"], written.get(h.get("best"))) for h in history
    ]
    parts = [
        html.paragraph(f"{kind} run, {len(history)} epoch(s) trained (from {LAST})."),
        html.table(["epoch", "train loss", metric, "best.pt"], rows, "epochs"),
    ]
    if history:
        svg = plots.to_svg(training_curve_figure(history, metric, title))
        parts.append(html.figure(svg, f"train loss and {metric} per epoch"))
    return html.section("training", "Training: loss and validation curves", parts)


def train_sections(run_dir: Path) -> list[str]:
    kind, _ = read_run_config(run_dir)
    last = run_dir / LAST
    history = load_checkpoint(last)["history"] if last.is_file() else []
    return [epochs_section(kind, history, run_dir.name)]

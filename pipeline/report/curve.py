"""The training curve of a run, as a PNG beside its checkpoints: a curve is read at a glance,
an epoch log is not. The run report draws the same figure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.io.atomic import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CURVE_FILE = "training_curve.png"


def training_curve_figure(history: list[dict[str, Any]], metric: str, title: str) -> Figure:
    """Training loss per epoch and, on a second axis, the validation ``metric``."""
    from matplotlib.figure import Figure  # no pyplot: no screen on a cluster node

    figure = Figure(figsize=(6.4, 3.6))
    loss_axis = figure.subplots()
    epochs = [h["epoch"] for h in history]
    lines = loss_axis.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("train loss")
    validated = [(h["epoch"], h["val_score"]) for h in history if h["val_score"] is not None]
    if validated:
        metric_axis = loss_axis.twinx()
        lines += metric_axis.plot(*zip(*validated, strict=True), "s-", color="C1", label=metric)
        metric_axis.set_ylabel(metric)
    loss_axis.legend(handles=lines, loc="best")
    figure.suptitle(f"{title}: {len(epochs)} epochs")
    figure.tight_layout()
    return figure


def save_training_curve(history: list[dict[str, Any]], metric: str, path: Path) -> None:
    figure = training_curve_figure(history, metric, path.parent.name)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)

"""The epoch loop both trainers share: checkpoints, resume, validation, early stopping, NaN stop.

``last.pt`` is written after every epoch and ``best.pt`` after the epoch with the best
validation score (or the lowest training loss when there is no validation set); ``last.pt``
comes after ``best.pt``, so it commits the epoch (a run staged for a URL uploads it last, and
a resume from it rewrites a ``best.pt`` that a crash cut off). Both hold the
full state, so a stopped run resumes from ``last.pt`` and takes exactly the steps it would have
taken: data order and crops are functions of (seed, epoch), and the torch RNG state (dropout)
is restored with the model, optimiser and scheduler.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from pipeline.errors import UserError
from pipeline.io.run_dir import BEST, LAST, load_checkpoint, save_checkpoint
from pipeline.report.curve import CURVE_FILE, save_training_curve
from pipeline.train.data import TrainingDataError

log = logging.getLogger(__name__)


class NonFiniteLossError(UserError, RuntimeError):
    """The loss became NaN or infinite; the checkpoints keep the last finite state."""


class TrainableModel(Protocol):
    def loss(self, *batch: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    steps: int
    train_loss: float
    val_score: float | None
    seconds: float


StepCallback = Callable[[int, float], None]  # (global step, loss): the CLI's progress bar
EpochCallback = Callable[["EpochResult"], None]  # after an epoch's files: the CLI's upload


def _to_device(batch: Sequence[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    return [t.to(device, non_blocking=True) for t in batch]


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batches: Callable[[int], Iterable[Sequence[torch.Tensor]]],
    run_dir: Path,
    epochs: int,
    device: torch.device,
    validate: Callable[[], float | None] | None = None,
    metric: tuple[str, bool] = ("val_map", True),
    patience: int | None = None,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> list[EpochResult]:
    """Train ``model`` (which has ``loss(*batch)``) for ``epochs``, resuming from ``last.pt``.

    ``batches(epoch)`` yields the batches of a 0-based epoch; ``validate()`` returns the
    validation metric (None when there is nothing to validate on), named and ordered by
    ``metric`` = (name, higher is better). Without it, the training loss picks ``best.pt``.
    Training stops early after ``patience`` epochs without a better score. ``on_epoch`` is
    called once an epoch's checkpoints and curve are written.
    """
    state: dict[str, Any] = {"step": 0, "epoch": 0, "best": None, "stale": 0, "history": []}
    last = run_dir / LAST
    if last.exists():
        checkpoint = load_checkpoint(last)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        _restore_rng(checkpoint["rng"])
        state = {k: checkpoint[k] for k in state}
        # its name, not its path: the log is in the run folder (a scratch copy for a URL)
        log.info("resumed %s at epoch %d, step %d", LAST, state["epoch"], state["step"])
    model.to(device)
    results: list[EpochResult] = []
    while state["epoch"] < epochs:
        if patience is not None and state["stale"] >= patience:
            log.info("early stop: no better validation score in %d epochs", patience)
            break
        started = time.monotonic()
        model.train()
        total, steps = 0.0, 0
        for batch in batches(state["epoch"]):
            loss = model.loss(*_to_device(batch, device))  # type: ignore[operator]
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"loss is {value} at epoch {state['epoch'] + 1}, step {state['step'] + 1}; "
                    f"{last} keeps the last finite state. Check the shards for non-finite "
                    "features, or lower the learning rate"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            state["step"] += 1
            total += value
            steps += 1
            if on_step is not None:
                on_step(state["step"], value)
        if steps == 0:
            raise TrainingDataError("an epoch yielded no batch: the shards hold no usable sample")
        state["epoch"] += 1
        model.eval()
        with torch.no_grad():
            val_score = validate() if validate is not None else None
        train_loss = total / steps
        name, higher_is_better = metric
        score = -train_loss
        if val_score is not None:
            score = val_score if higher_is_better else -val_score
        improved = state["best"] is None or score > state["best"]
        state["best"] = score if improved else state["best"]
        state["stale"] = 0 if improved else state["stale"] + 1
        result = EpochResult(
            state["epoch"], steps, train_loss, val_score, time.monotonic() - started
        )
        state["history"].append(
            {
                "epoch": result.epoch,
                "train_loss": result.train_loss,
                "val_score": val_score,
                "metric": name,
                "best": improved,  # best.pt was written after this epoch
            }
        )
        checkpoint = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(),
            **state,
        }
        if improved:
            save_checkpoint(run_dir / BEST, checkpoint)
        save_checkpoint(last, checkpoint)
        save_training_curve(state["history"], name, run_dir / CURVE_FILE)
        log.info(
            "epoch %d/%d: %d steps, train loss %.5f, %s %s%s, %.1f s",
            result.epoch,
            epochs,
            steps,
            result.train_loss,
            name,
            "-" if val_score is None else f"{val_score:.4f}",
            " (best)" if improved else "",
            result.seconds,
        )
        results.append(result)
        if on_epoch is not None:
            on_epoch(result)
    return results

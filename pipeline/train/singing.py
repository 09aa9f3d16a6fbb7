"""The singing detector: Whisper's judgement of a window, predicted from its encoder states.

The audio-only path (``run extract --livi-run``, ``run embed --audio``) computes the encoder
states of every window and nothing else, so it has no transcript for ``stages/singing.py`` to
judge. This model reads what it has: a window's (L, d) encoder states, pooled over time as
their mean and their maximum per channel (B, 2d), standardised with the training set's
statistics (saved with the weights), then one hidden layer (``hidden_size``; 0: a linear probe)
and one logit: the probability that Whisper's judge calls the window sung.

Trained from an extraction's shards (``pipeline run train singing``): every sample with encoder
states is a window and its ``singing`` verdict the label; windows judged unsung are in the
shards only with ``singing.keep_unsung_states`` (and instrumental tracks only with
``singing.keep_unsung_tracks``). Validation and test hold out whole works; the epoch with the
lowest validation loss is ``best.pt``; ``agreement`` is the share of windows on which the
detector's verdict is the judge's; the test works are left for reporting. The package ships a
default
(``DEFAULT_DETECTOR``), made by ``python -m benchmarks.vocal_detection --train-detector``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.io.atomic import atomic_write_bytes
from pipeline.io.run_dir import (
    BEST,
    CONFIG_FILE,
    RunFolderError,
    config_from_dict,
    load_checkpoint,
    read_run_config,
    save_checkpoint,
    write_run_config,
    write_split,
)
from pipeline.io.webdataset import iter_samples, list_shards
from pipeline.models.singing_detector import KIND, DetectorConfig, SingingDetector, pool_states
from pipeline.train.data import TrainingDataError, split_works, work_key
from pipeline.train.loop import EpochCallback, EpochResult, StepCallback, fit

WindowKey = tuple[str, int]  # (track_id, segment_index)


def detector_preset(name: str) -> DetectorConfig:
    """``paper`` (the name the trainers share): the shipped detector, an MLP with 32 hidden
    units; ``small``: 16 hidden units and few epochs, for smoke runs."""
    if name == "paper":
        return DetectorConfig()
    if name == "small":
        return DetectorConfig(hidden_size=16, epochs=5, batch_size=8)
    raise ValueError(f"unknown preset {name!r}; use paper or small")


@dataclass(frozen=True)
class Windows:
    """Pooled windows of some shards: features (n, 2d), labels (n,), their works and keys."""

    pooled: np.ndarray
    labels: np.ndarray  # bool: judged sung
    works: tuple[str, ...]
    keys: tuple[WindowKey, ...]

    def subset(self, mask: np.ndarray) -> Windows:
        picked = np.flatnonzero(mask)
        return Windows(
            self.pooled[picked],
            self.labels[picked],
            tuple(self.works[i] for i in picked),
            tuple(self.keys[i] for i in picked),
        )


def read_windows(
    shards: Sequence[Path], labels: Mapping[WindowKey, bool] | None = None, batch: int = 32
) -> Windows:
    """Every shard sample's encoder states, pooled, with its verdict (``meta["singing"]``, or
    ``labels`` by (track_id, segment_index) where given: samples it lacks are skipped)."""
    pooled: list[np.ndarray] = []
    verdicts: list[bool] = []
    works: list[str] = []
    keys: list[WindowKey] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        if pending:
            stacked = torch.from_numpy(np.stack(pending).astype(np.float32))
            pooled.extend(pool_states(stacked).numpy())
            pending.clear()

    for shard in shards:
        for sample in iter_samples(shard, frozenset({"encoder"})):
            key = (sample.meta["track_id"], sample.meta["segment_index"])
            if "encoder" not in sample.arrays:  # a track outside encoder_states_share
                continue
            if labels is None:
                sung = sample.meta.get("singing", "sung") == "sung"
            elif key in labels:
                sung = labels[key]
            else:
                continue
            pending.append(sample.arrays["encoder"])
            verdicts.append(sung)
            works.append(work_key(sample.meta))
            keys.append(key)
            if len(pending) == batch:
                flush()
    flush()
    if not keys:
        raise TrainingDataError("no window with encoder states in the shards: nothing to learn")
    return Windows(np.stack(pooled), np.array(verdicts, bool), tuple(works), tuple(keys))


def _batches(
    windows: Windows, batch_size: int, seed: int, epoch: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    order = np.random.default_rng([seed, epoch]).permutation(len(windows.labels))
    for first in range(0, len(order), batch_size):
        chosen = order[first : first + batch_size]
        yield (
            torch.from_numpy(windows.pooled[chosen]),
            torch.from_numpy(windows.labels[chosen].astype(np.float32)),
        )


@torch.no_grad()
def agreement(model: SingingDetector, windows: Windows, threshold: float = 0.5) -> float:
    """The share of ``windows`` on which the detector's verdict is the judge's."""
    device = next(model.parameters()).device
    probabilities = torch.sigmoid(model.logits(torch.from_numpy(windows.pooled).to(device)))
    return float(np.mean((probabilities.cpu().numpy() > threshold) == windows.labels))


def train_singing(
    shards_dir: Path | Sequence[Path],
    run_dir: Path,
    config: DetectorConfig,
    on_step: StepCallback | None = None,
    labels: Mapping[WindowKey, bool] | None = None,
    on_epoch: EpochCallback | None = None,
) -> list[EpochResult]:
    """Train (or resume) a detector in ``run_dir`` on the shards of one or more extraction
    outputs; ``labels`` replaces the shards' verdicts (see ``read_windows``)."""
    folders = [shards_dir] if isinstance(shards_dir, str | Path) else list(shards_dir)
    windows = read_windows([s for f in folders for s in list_shards(f)], labels)
    return fit_detector(windows, Path(run_dir), config, on_step, on_epoch)


def fit_detector(
    windows: Windows,
    run_dir: Path,
    config: DetectorConfig,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> list[EpochResult]:
    """``train_singing`` on windows already read and pooled."""
    if windows.labels.all() or not windows.labels.any():
        raise TrainingDataError(
            f"all {len(windows.labels)} windows in the shards have the same verdict; extract "
            "with --set singing.keep_unsung_states=true --set singing.keep_unsung_tracks=true "
            "so that the windows judged unsung are there too"
        )
    config = dataclasses.replace(config, input_dim=windows.pooled.shape[1] // 2)
    versions = {w: 1 for w in windows.works}
    train_works, val_works, test_works = split_works(
        versions, config.val_fraction, config.seed, config.test_fraction
    )
    write_run_config(run_dir, KIND, config)
    write_split(run_dir, train_works, val_works, test_works)
    train = windows.subset(np.array([w in train_works for w in windows.works]))
    val = windows.subset(np.array([w in val_works for w in windows.works]))
    torch.manual_seed(config.seed)
    model = SingingDetector(config)
    model.feature_mean.copy_(torch.from_numpy(train.pooled.mean(axis=0)))
    model.feature_std.copy_(torch.from_numpy(train.pooled.std(axis=0) + 1e-6))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)

    def validate() -> float | None:  # the loss, not the agreement: on few windows it ties
        if not len(val.labels):
            return None
        pooled = torch.from_numpy(val.pooled).to(torch.device(config.device))
        labels = torch.from_numpy(val.labels.astype(np.float32)).to(pooled.device)
        return float(model.loss(pooled, labels))

    return fit(
        model,
        optimizer,
        constant,
        lambda epoch: _batches(train, config.batch_size, config.seed, epoch),
        run_dir,
        config.epochs,
        torch.device(config.device),
        validate=validate,
        metric=("val_loss", False),
        patience=config.patience,
        on_step=on_step,
        on_epoch=on_epoch,
    )


def export_detector(run_dir: Path, target: Path) -> None:
    """A run folder's config and best weights, without the optimiser state, as ``target``: a
    run folder of a few KB that ``load_detector`` reads like any other."""
    kind, values = read_run_config(run_dir)
    if kind != KIND:
        raise RunFolderError(f"{run_dir} is a {kind} run, not a singing detector")
    checkpoint = load_checkpoint(Path(run_dir) / BEST)
    target.mkdir(parents=True, exist_ok=True)
    document = {"kind": kind, "config": values}
    atomic_write_bytes(
        target / CONFIG_FILE, json.dumps(document, indent=2, sort_keys=True).encode()
    )
    kept = {k: checkpoint[k] for k in ("model", "epoch", "step", "history")}
    save_checkpoint(target / BEST, kept)


def detector_config(run_dir: Path) -> DetectorConfig:
    _, values = read_run_config(run_dir)
    return config_from_dict(DetectorConfig, values)

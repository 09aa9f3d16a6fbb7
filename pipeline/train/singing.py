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
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.io.atomic import atomic_write_bytes
from pipeline.io.webdataset import iter_samples, list_shards
from pipeline.train.data import TrainingDataError, split_works, work_key
from pipeline.train.loop import EpochCallback, EpochResult, StepCallback, fit
from pipeline.train.run_dir import (
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

KIND = "singing"
DEFAULT_DETECTOR = Path(__file__).resolve().parents[1] / "models" / "data" / "singing_detector"
NO_DETECTOR = "none"
WindowKey = tuple[str, int]  # (track_id, segment_index)


@dataclass(frozen=True)
class DetectorConfig:
    input_dim: int | None = None  # Whisper width, read from the shards
    # units of the one hidden layer (the shipped detector: 32); 0: a linear probe
    hidden_size: int = 32
    batch_size: int = 16
    epochs: int = 15  # each epoch redraws the training curve: few epochs of many steps
    lr: float = 3e-3
    weight_decay: float = 1e-2
    val_fraction: float = 0.2  # of the works, held out to pick the best epoch
    test_fraction: float = 0.1  # of the works, held out from both, to report on
    patience: int | None = None
    seed: int = 0
    device: str = "cpu"


def detector_preset(name: str) -> DetectorConfig:
    """``paper`` (the name the trainers share): the shipped detector, an MLP with 32 hidden
    units; ``small``: 16 hidden units and few epochs, for smoke runs."""
    if name == "paper":
        return DetectorConfig()
    if name == "small":
        return DetectorConfig(hidden_size=16, epochs=5, batch_size=8)
    raise ValueError(f"unknown preset {name!r}; use paper or small")


def pool_states(states: torch.Tensor) -> torch.Tensor:
    """(B, L, d) encoder states -> (B, 2d) float32: the mean and the maximum over time."""
    if states.ndim != 3:
        raise ValueError(f"expected (B, L, d) encoder states, got shape {tuple(states.shape)}")
    states = states.float()
    return torch.cat([states.mean(dim=1), states.amax(dim=1)], dim=-1)


class SingingDetector(nn.Module):
    def __init__(self, config: DetectorConfig):
        super().__init__()
        if config.input_dim is None:
            raise ValueError("DetectorConfig needs input_dim (read from the shards)")
        width = 2 * config.input_dim
        # the training windows' pooled statistics, saved with the weights
        self.register_buffer("feature_mean", torch.zeros(width))
        self.register_buffer("feature_std", torch.ones(width))
        if config.hidden_size:
            self.head: nn.Module = nn.Sequential(
                nn.Linear(width, config.hidden_size), nn.ReLU(), nn.Linear(config.hidden_size, 1)
            )
        else:
            self.head = nn.Linear(width, 1)

    def logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, 2d) pooled states -> (B,) logits of "sung"."""
        return self.head((pooled - self.feature_mean) / self.feature_std).squeeze(-1)

    def scores(self, encoder_states: torch.Tensor) -> torch.Tensor:
        """(B, L, d) encoder states -> (B,) probability that the judge calls each window sung."""
        return torch.sigmoid(self.logits(pool_states(encoder_states)))

    def loss(self, pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of (B, 2d) pooled windows against (B,) 0/1 verdicts; batches
        are pooled once before training (the pooling has no weights)."""
        return F.binary_cross_entropy_with_logits(self.logits(pooled), labels.float())


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


def detector_folder(spec: str) -> Path | None:
    """The run folder ``singing.detector`` names: the shipped one for "default", None for
    "none"."""
    if spec == NO_DETECTOR:
        return None
    return DEFAULT_DETECTOR if spec == "default" else Path(spec)


def detector_checkpoint(spec: str) -> Path | None:
    """The weights ``singing.detector`` names (None for "none"); a folder that is not a
    singing detector's run stops the run before any work."""
    from pipeline.train.trained import run_checkpoint

    folder = detector_folder(spec)
    if folder is None:
        return None
    kind, _ = read_run_config(folder)
    if kind != KIND:
        raise RunFolderError(
            f"singing.detector {spec} is a {kind} run; it needs a singing detector "
            "(pipeline run train singing), 'default' or 'none'"
        )
    return run_checkpoint(folder)


@functools.cache
def load_detector(spec: str, device: str = "cpu") -> SingingDetector | None:
    """The detector of ``singing.detector`` in eval mode (once a process), None for "none"."""
    from pipeline.train.trained import load_run

    folder = detector_folder(spec)
    if folder is None:
        return None
    model, values = load_run(folder, torch.device(device))
    if not isinstance(model, SingingDetector):
        raise RunFolderError(
            f"singing.detector {spec} is a {values['kind']} run; it needs a singing detector "
            "(pipeline run train singing), 'default' or 'none'"
        )
    return model


@torch.no_grad()
def window_scores(detector: SingingDetector, states: Sequence[np.ndarray]) -> np.ndarray:
    """(n,) float64 probabilities of "sung", one per window's (L, d) encoder states."""
    if not states:
        return np.zeros(0)
    device = next(detector.parameters()).device
    batch = torch.from_numpy(np.stack(states).astype(np.float32)).to(device)
    return detector.scores(batch).cpu().numpy().astype(np.float64)


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

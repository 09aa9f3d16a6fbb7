"""WEALY: track embeddings from Whisper decoder states, trained contrastively across versions.

A track's decoder states (one per generated token, all segments concatenated) -> Linear ->
pre-norm Transformer encoder -> GeM pooling with a learnable exponent -> Linear -> L2-normalised.
Training sees random crops of ``crop`` states and a multi-positive NT-Xent whose positives are
the other versions of the same work in the batch. Numbers follow REFERENCES.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.io.run_dir import write_run_config, write_split
from pipeline.io.webdataset import list_shards
from pipeline.metrics import cosine_distances, retrieval_metrics
from pipeline.train.data import (
    TrackRef,
    TrainingDataError,
    index_tracks,
    pad_sequences,
    split_works,
    wealy_batch_count,
    wealy_batches,
)
from pipeline.train.loop import EpochCallback, EpochResult, StepCallback, fit


@dataclass(frozen=True)
class WealyConfig:
    input_dim: int | None = None  # Whisper width, read from the shards
    d_model: int = 768
    layers: int = 4
    heads: int = 12
    ffn_dim: int = 1024
    dropout: float = 0.1
    gem_p_init: float = 3.0
    output_dim: int = 512
    temperature: float = 0.1
    crop: int = 1500  # k: states per training crop and per embedding window
    window_overlap: float = 0.9  # of consecutive embedding windows
    works_per_batch: int = 32
    versions_per_work: int = 2
    epochs: int = 50
    lr: float = 1e-4
    weight_decay: float = 1e-3
    warmup_steps: int = 500
    val_fraction: float = 0.1  # of the works, held out for the validation MAP
    test_fraction: float = 0.1  # of the works, held out to report on (run evaluate --holdout)
    patience: int | None = 5  # epochs without a better validation MAP before stopping
    seed: int = 0
    device: str = "cpu"


def wealy_preset(name: str) -> WealyConfig:
    """``paper``: the reference sizes; ``small``: tiny sizes for CPU smoke runs."""
    if name == "paper":
        return WealyConfig()
    if name == "small":
        return WealyConfig(
            d_model=32,
            layers=1,
            heads=2,
            ffn_dim=64,
            output_dim=32,
            crop=32,
            works_per_batch=4,
            epochs=5,
            lr=1e-3,
            warmup_steps=2,
            patience=None,
        )
    raise ValueError(f"unknown preset {name!r}; use paper or small")


class GeM(nn.Module):
    """Generalised mean over time, p = 1 + softplus(w) >= 1: p = 1 is the mean, p -> inf the max.

    Inputs are clamped to ``eps`` (GeM is defined for positive values) and divided by their
    per-feature maximum before the power, so large p does not overflow.
    """

    def __init__(self, p_init: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.raw_p = nn.Parameter(torch.tensor(math.log(math.expm1(p_init - 1.0))))
        self.eps = eps

    @property
    def p(self) -> torch.Tensor:
        return 1.0 + F.softplus(self.raw_p)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T, d) with (B, T) bool valid -> (B, d)."""
        if x.ndim != 3 or valid.shape != x.shape[:2]:
            raise ValueError(f"expected (B, T, d) and (B, T), got {x.shape} and {valid.shape}")
        mask = valid.unsqueeze(-1)
        x = x.clamp(min=self.eps).masked_fill(~mask, 0.0)
        peak = x.amax(dim=1, keepdim=True)  # (B, 1, d), >= eps where a state is valid
        powered = (x / peak).pow(self.p).masked_fill(~mask, 0.0)
        mean = powered.sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        return peak.squeeze(1) * mean.pow(1.0 / self.p)


def multi_positive_nt_xent(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """NT-Xent where every same-label item is a positive: for each anchor with positives, the
    mean over its positives of -log softmax(similarity / t) over all other items."""
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(f"expected (B, e) and (B,), got {embeddings.shape} and {labels.shape}")
    logits = embeddings @ embeddings.T / temperature
    self_mask = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    anchors = positives.any(dim=1)
    if not anchors.any():
        raise ValueError("no item in the batch has a positive (another version of its work)")
    per_anchor = -log_prob.masked_fill(~positives, 0.0).sum(dim=1) / positives.sum(dim=1).clamp(
        min=1
    )
    return per_anchor[anchors].mean()


class WealyModel(nn.Module):
    def __init__(self, config: WealyConfig):
        super().__init__()
        if config.input_dim is None:
            raise ValueError("WealyConfig needs input_dim (read from the shards)")
        self.temperature = config.temperature
        self.project_in = nn.Linear(config.input_dim, config.d_model)
        layer = nn.TransformerEncoderLayer(
            config.d_model,
            config.heads,
            config.ffn_dim,
            config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, config.layers, norm=nn.LayerNorm(config.d_model), enable_nested_tensor=False
        )
        self.pool = GeM(config.gem_p_init)
        self.project_out = nn.Linear(config.d_model, config.output_dim, bias=False)

    def embed(self, states: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T, d) decoder states, (B, T) bool valid -> (B, e) L2-normalised embeddings."""
        x = self.encoder(self.project_in(states), src_key_padding_mask=~valid)
        return F.normalize(self.project_out(self.pool(x, valid)), dim=-1)

    def loss(self, states: torch.Tensor, valid: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return multi_positive_nt_xent(self.embed(states, valid), labels, self.temperature)


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Starts of windows of ``window`` states overlapping by ``overlap``, the last flush with
    the end, so that every state is covered; one window when the track is shorter."""
    if length <= window:
        return [0]
    hop = max(1, round(window * (1.0 - overlap)))
    starts = list(range(0, length - window + 1, hop))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


@torch.no_grad()
def embed_windows(
    model: WealyModel, states: np.ndarray, window: int, overlap: float, batch_size: int = 64
) -> torch.Tensor:
    """(w, e) embeddings of a track's overlapping windows of decoder states."""
    device = next(model.parameters()).device
    crops = [states[s : s + window] for s in window_starts(len(states), window, overlap)]
    out = []
    for first in range(0, len(crops), batch_size):
        x, valid = pad_sequences(crops[first : first + batch_size])
        out.append(model.embed(x.to(device), valid.to(device)).cpu())
    return torch.cat(out)


def embed_track(
    model: WealyModel, states: np.ndarray, window: int, overlap: float
) -> tuple[np.ndarray, np.ndarray]:
    """((e,) L2-normalised mean of the window embeddings, (w, e) the window embeddings)."""
    windows = embed_windows(model, states, window, overlap)
    return F.normalize(windows.mean(dim=0), dim=0).numpy(), windows.numpy()


def validation_map(
    model: WealyModel, val: list[TrackRef], train: list[TrackRef], config: WealyConfig
) -> float | None:
    """MAP of the held-out tracks as queries, with the training tracks as extra distractors;
    None when no held-out work has two versions."""
    works = [t.work for t in val]
    if len(works) == len(set(works)):
        return None
    tracks = val + train
    embeddings = np.stack(
        [embed_track(model, t.load_states(), config.crop, config.window_overlap)[0] for t in tracks]
    )
    queries = np.arange(len(tracks)) < len(val)
    return retrieval_metrics(
        cosine_distances(embeddings), works + [t.work for t in train], queries
    ).map


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then cosine decay to zero at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_wealy(
    shards_dir: Path,
    run_dir: Path,
    config: WealyConfig,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> list[EpochResult]:
    """Train (or resume) a WEALY run in ``run_dir`` on the shards of ``shards_dir``."""
    tracks = index_tracks(list_shards(shards_dir))
    if not tracks:
        raise TrainingDataError(f"{shards_dir}: no track has decoder states")
    config = dataclasses.replace(config, input_dim=tracks[0].decoder[0].shape[1])
    versions: dict[str, int] = {}
    for track in tracks:
        versions[track.work] = versions.get(track.work, 0) + 1
    train_works, val_works, test_works = split_works(
        versions, config.val_fraction, config.seed, config.test_fraction
    )
    write_run_config(run_dir, "wealy", config)
    write_split(run_dir, train_works, val_works, test_works)
    train = [t for t in tracks if t.work in train_works]
    val = [t for t in tracks if t.work in val_works]
    torch.manual_seed(config.seed)
    model = WealyModel(config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    total_steps = config.epochs * wealy_batch_count(train, config.works_per_batch)
    device = torch.device(config.device)

    def batches(epoch: int):
        return wealy_batches(
            train, config.works_per_batch, config.versions_per_work, config.crop, config.seed, epoch
        )

    return fit(
        model,
        optimizer,
        warmup_cosine(optimizer, config.warmup_steps, total_steps),
        batches,
        run_dir,
        config.epochs,
        device,
        validate=lambda: validation_map(model, val, train, config),
        metric=("val_map", True),
        patience=config.patience,
        on_step=on_step,
        on_epoch=on_epoch,
    )

"""LIVI: an audio encoder trained to land in the lyrics (text-embedding) space.

Frozen Whisper encoder states (from the shards) -> attention pooling with one learnable query
-> MLP projection -> L2-normalised vector in the text target's space. Trained on segments that
have a text target; at query time it needs audio only. Numbers follow REFERENCES.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.io.webdataset import iter_samples, list_shards
from pipeline.metrics import cosine_distances, retrieval_metrics
from pipeline.train.data import (
    livi_batches,
    mean_text_target,
    probe_dims,
    split_works,
    work_key,
    work_versions,
)
from pipeline.train.loop import EpochCallback, EpochResult, StepCallback, fit
from pipeline.train.run_dir import write_run_config, write_split


@dataclass(frozen=True)
class LiviConfig:
    input_dim: int | None = None  # Whisper width, read from the shards
    text_dim: int | None = None  # text target width, read from the shards
    hidden_sizes: tuple[int, ...] = (3072, 2048, 2048, 1536)
    mlp_ratio: int = 2
    layer_scale_init: float = 1e-4
    rope_base: float = 10_000.0
    alpha: float = 0.5  # weight of the cosine term; 1 - alpha weighs the similarity MSE
    centre_targets: bool = False  # subtract the training targets' mean before the loss
    batch_size: int = 128
    epochs: int = 3
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    warmup_steps: int = 10_000
    shuffle_buffer: int = 1024  # segments
    val_fraction: float = 0.1  # of the works, held out for the validation MAP
    test_fraction: float = 0.1  # of the works, held out to report on (run evaluate --holdout)
    patience: int | None = None  # epochs without a better validation MAP before stopping
    seed: int = 0
    device: str = "cpu"


def livi_preset(name: str) -> LiviConfig:
    """``paper``: the reference sizes; ``small``: tiny sizes for CPU smoke runs."""
    if name == "paper":
        return LiviConfig()
    if name == "small":
        return LiviConfig(
            hidden_sizes=(64,), batch_size=4, lr=1e-3, warmup_steps=4, shuffle_buffer=16
        )
    raise ValueError(f"unknown preset {name!r}; use paper or small")


def apply_rope(x: torch.Tensor, base: float = 10_000.0) -> torch.Tensor:
    """Rotary position embedding over axis -2 of (..., L, d), d even; norms are unchanged."""
    length, dim = x.shape[-2], x.shape[-1]
    if dim % 2:
        raise ValueError(f"RoPE needs an even width, got {dim}")
    inv_freq = base ** (-torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) / dim)
    angles = torch.arange(length, device=x.device, dtype=torch.float32)[:, None] * inv_freq
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # (L, d/2)
    even, odd = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2)


class AttentionPooling(nn.Module):
    """One learnable query attends over the frames (1 head, RoPE on keys), then a residual
    feed-forward; both branches start near zero through layer-scale."""

    def __init__(self, dim: int, mlp_ratio: int, layer_scale_init: float, rope_base: float):
        super().__init__()
        self.rope_base = rope_base
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.norm_frames = nn.LayerNorm(dim)
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.scale_attn = nn.Parameter(torch.full((dim,), layer_scale_init))
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim)
        )
        self.scale_mlp = nn.Parameter(torch.full((dim,), layer_scale_init))
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, L, d) -> (B, d)."""
        if frames.ndim != 3:
            raise ValueError(f"expected (B, L, d) frames, got shape {tuple(frames.shape)}")
        x = self.norm_frames(frames)
        keys = apply_rope(self.k(x), self.rope_base)
        query = self.q(self.query).expand(len(frames), -1, -1)  # (B, 1, d)
        attended = F.scaled_dot_product_attention(query, keys, self.v(x))  # (B, 1, d)
        pooled = self.query + self.scale_attn * self.out(attended)
        pooled = pooled + self.scale_mlp * self.mlp(self.norm_mlp(pooled))
        return self.norm_out(pooled).squeeze(1)


class LiviModel(nn.Module):
    def __init__(self, config: LiviConfig):
        super().__init__()
        if config.input_dim is None or config.text_dim is None:
            raise ValueError("LiviConfig needs input_dim and text_dim (read from the shards)")
        self.alpha = config.alpha
        self.pool = AttentionPooling(
            config.input_dim, config.mlp_ratio, config.layer_scale_init, config.rope_base
        )
        layers: list[nn.Module] = []
        width = config.input_dim
        for hidden in config.hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, config.text_dim))
        self.project = nn.Sequential(*layers)
        # the training targets' mean, saved with the weights; none (and not saved, so earlier
        # checkpoints load) unless centre_targets
        mean = torch.zeros(config.text_dim) if config.centre_targets else None
        self.register_buffer("target_mean", mean)

    def embed(self, encoder_states: torch.Tensor) -> torch.Tensor:
        """(B, L, d) Whisper encoder states -> (B, e) L2-normalised audio embeddings."""
        return F.normalize(self.project(self.pool(encoder_states)), dim=-1)

    def loss(self, encoder_states: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """alpha * cosine-embedding loss + (1 - alpha) * MSE of in-batch similarity matrices.

        Targets are re-normalised (a mean of unit piece embeddings is a little shorter than 1),
        less ``target_mean`` when centred: e5 embeddings of any two texts sit at a
        high cosine, so uncentred, one constant vector already scores a low loss.
        """
        audio = self.embed(encoder_states)
        target = F.normalize(text, dim=-1)
        if self.target_mean is not None:
            target = F.normalize(target - self.target_mean, dim=-1)
        cosine = F.cosine_embedding_loss(audio, target, torch.ones(len(audio), device=audio.device))
        similarity = F.mse_loss(audio @ audio.T, target @ target.T)
        return self.alpha * cosine + (1 - self.alpha) * similarity


def warmup_constant(
    optimizer: torch.optim.Optimizer, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then constant."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / max(1, warmup_steps))
    )


def livi_validation_map(
    model: LiviModel,
    shards: list[Path],
    val_works: frozenset[str],
    batch_size: int,
    device: torch.device,
) -> float | None:
    """MAP among the held-out tracks, each embedded from its audio alone (the mean of its
    shard segments' embeddings: the sung windows); None when no held-out work has two
    versions. Training tracks are left out: reading their encoder states again would cost an
    epoch's reading per validation."""
    sums: dict[str, np.ndarray] = {}
    works: dict[str, str] = {}
    pending: list[tuple[str, np.ndarray]] = []

    def embed_pending() -> None:
        states = torch.from_numpy(np.stack([s for _, s in pending]).astype(np.float32))
        vectors = model.embed(states.to(device)).cpu().numpy()  # (B, e)
        for (track_id, _), vector in zip(pending, vectors, strict=True):
            sums[track_id] = sums[track_id] + vector if track_id in sums else vector
        pending.clear()

    for shard in shards:
        for sample in iter_samples(shard, frozenset({"encoder"})):
            if "encoder" not in sample.arrays or sample.meta.get("detector_only"):
                continue  # a track outside encoder_states_share; a window kept for the detector
            if work_key(sample.meta) in val_works:
                works[sample.meta["track_id"]] = work_key(sample.meta)
                pending.append((sample.meta["track_id"], sample.arrays["encoder"]))
                if len(pending) == batch_size:
                    embed_pending()
    if pending:
        embed_pending()
    track_ids = sorted(sums)
    labels = [works[t] for t in track_ids]
    if len(labels) == len(set(labels)):
        return None
    embeddings = np.stack([sums[t] / np.linalg.norm(sums[t]) for t in track_ids])
    return retrieval_metrics(cosine_distances(embeddings), labels).map


def train_livi(
    shards_dir: Path,
    run_dir: Path,
    config: LiviConfig,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> list[EpochResult]:
    """Train (or resume) a LIVI run in ``run_dir`` on the shards of ``shards_dir``."""
    shards = list_shards(shards_dir)
    input_dim, text_dim = probe_dims(shards)
    config = dataclasses.replace(config, input_dim=input_dim, text_dim=text_dim)
    train_works, val_works, test_works = split_works(
        work_versions(shards), config.val_fraction, config.seed, config.test_fraction
    )
    write_run_config(run_dir, "livi", config)
    write_split(run_dir, train_works, val_works, test_works)
    torch.manual_seed(config.seed)
    model = LiviModel(config)
    if config.centre_targets:
        model.target_mean.copy_(torch.from_numpy(mean_text_target(shards, train_works)))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    device = torch.device(config.device)

    def batches(epoch: int):
        return livi_batches(
            shards, train_works, config.batch_size, config.seed, epoch, config.shuffle_buffer
        )

    def validate() -> float | None:
        return livi_validation_map(model, shards, val_works, config.batch_size, device)

    return fit(
        model,
        optimizer,
        warmup_constant(optimizer, config.warmup_steps),
        batches,
        run_dir,
        config.epochs,
        device,
        validate=validate,
        metric=("val_map", True),
        patience=config.patience,
        on_step=on_step,
        on_epoch=on_epoch,
    )

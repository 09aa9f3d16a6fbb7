"""The LIVI head: attention pooling over Whisper encoder states, then a projection into the
lyrics (text-embedding) space. Here, not in ``train/``, because extraction's audio-only path
loads it as well as the trainer (docs/architecture.md). Numbers follow REFERENCES.md."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.io.run_dir import config_from_dict
from pipeline.models.weights_spec import WeightsSpec, load_weights, weights_spec

KIND = "livi"


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


def _batched(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@torch.no_grad()
def livi_segment_embeddings(
    model: LiviModel, segments: Iterable[tuple[str, np.ndarray]], batch_size: int = 16
) -> Iterator[tuple[str, np.ndarray]]:
    """(track_id, (e,) embedding) per (track_id, (L, d) encoder states) segment."""
    device = next(model.parameters()).device
    for batch in _batched(segments, batch_size):
        states = torch.from_numpy(np.stack([s for _, s in batch]).astype(np.float32))
        embeddings = model.embed(states.to(device)).cpu().numpy()
        yield from zip((t for t, _ in batch), embeddings, strict=True)


def livi_spec(run_dir: str) -> WeightsSpec:
    """A LIVI run folder (or URL), checked before any work: another kind of run stops it."""
    return weights_spec(
        run_dir, KIND, run_dir, "LIVI embeddings need a LIVI run (pipeline run train livi)"
    )


@functools.cache
def load_livi(spec: WeightsSpec, device: str) -> tuple[LiviModel, int]:
    """The LIVI head in eval mode, once a process, and the encoder width it was trained on."""
    build = lambda values: LiviModel(config_from_dict(LiviConfig, values))  # noqa: E731
    model, values = load_weights(spec, build, device)
    return model, values["input_dim"]  # type: ignore[return-value]

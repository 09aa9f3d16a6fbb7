"""The singing detector: Whisper's judgement of a window, predicted from its encoder states.

The audio-only path (``run extract --livi-run``, ``run embed --audio``) computes the encoder
states of every window and nothing else, so it has no transcript to judge. This model reads
what it has: a window's (L, d) encoder states, pooled over time as their mean and their maximum
per channel (B, 2d), standardised with the training set's statistics (saved with the weights),
then one hidden layer (``hidden_size``; 0: a linear probe) and one logit: the probability that
Whisper's judge calls the window sung. Trained by ``pipeline/train/singing.py``; here because
extraction loads it as well as the trainer.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.io.run_dir import config_from_dict
from pipeline.models.weights_spec import WeightsSpec, load_weights, weights_spec

FIX = "it needs a singing detector (pipeline run train singing), 'default' or 'none'"


KIND = "singing"


DEFAULT_DETECTOR = Path(__file__).resolve().parents[1] / "models" / "data" / "singing_detector"


NO_DETECTOR = "none"


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


def detector_spec(setting: str) -> WeightsSpec | None:
    """The detector ``singing.detector`` names, checked before any work: the shipped one for
    "default", None for "none", else a run folder that must be a singing detector's."""
    if setting == NO_DETECTOR:
        return None
    folder = DEFAULT_DETECTOR if setting == "default" else Path(setting)
    return weights_spec(folder, KIND, f"singing.detector {setting}", FIX)


@functools.cache
def load_detector(spec: WeightsSpec | None, device: str = "cpu") -> SingingDetector | None:
    """The detector in eval mode, once a process (None: no detector)."""
    if spec is None:
        return None
    build = lambda values: SingingDetector(config_from_dict(DetectorConfig, values))  # noqa: E731
    return load_weights(spec, build, device)[0]


@torch.no_grad()
def window_scores(detector: SingingDetector, states: Sequence[np.ndarray]) -> np.ndarray:
    """(n,) float64 probabilities of "sung", one per window's (L, d) encoder states."""
    if not states:
        return np.zeros(0)
    device = next(detector.parameters()).device
    batch = torch.from_numpy(np.stack(states).astype(np.float32)).to(device)
    return detector.scores(batch).cpu().numpy().astype(np.float64)

"""A tiny randomly initialised HTDemucs, saved the way demucs saves its released models.

It goes through the same loading path as real weights (``demucs.states.load_model`` of a
``save_with_checksum`` file), with 0.3 M parameters instead of the real model's tens of
millions, so separation of a minute of audio takes seconds on a CPU.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import torch
from demucs.htdemucs import HTDemucs
from demucs.states import get_state, save_with_checksum

SOURCES = ["drums", "bass", "other", "vocals"]


def save_htdemucs(folder: Path, sources: list[str] = SOURCES, **kwargs: object) -> Path:
    """Save a randomly initialised HTDemucs; returns the ``<name>-<sha256[:8]>.th`` file, its
    ``.sha256`` beside it."""
    torch.manual_seed(0)
    size = {"channels": 8, "t_layers": 1, "t_heads": 1, "t_hidden_scale": 1.0} | kwargs
    model = HTDemucs(sources=sources, **size)
    args, init_kwargs = model._init_args_kwargs
    package = {
        "klass": HTDemucs,
        "args": args,
        "kwargs": init_kwargs,
        "state": get_state(model, None, half=True),  # released models store float16 states
        "training_args": {},
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_with_checksum(package, folder / "htdemucs.th")
    weights = next(folder.glob("htdemucs-*.th"))
    write_sha256(weights)
    return weights


def write_sha256(weights: Path) -> Path:
    """``<weights>.sha256``, written by the command docs/vocal-separation.md gives users."""
    name = shlex.quote(weights.name)
    subprocess.run(
        f"sha256sum {name} | cut -d' ' -f1 > {name}.sha256",
        shell=True,
        check=True,
        cwd=weights.parent,
    )
    return weights.with_name(f"{weights.name}.sha256")


class PassThrough(torch.nn.Module):
    """A stand-in separator whose 'vocals' are the mixture: what goes in must come back out."""

    sources = SOURCES
    samplerate = 44_100
    audio_channels = 2
    segment = 7.8

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        silent = torch.zeros_like(mix)
        return torch.stack([silent, silent, silent, mix], dim=1)

"""LIVI: an audio encoder trained to land in the lyrics (text-embedding) space.

Frozen Whisper encoder states (from the shards) -> attention pooling with one learnable query
-> MLP projection -> L2-normalised vector in the text target's space. Trained on segments that
have a text target; at query time it needs audio only. Numbers follow REFERENCES.md.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from pipeline.io.run_dir import write_run_config, write_split
from pipeline.io.webdataset import iter_samples, list_shards
from pipeline.metrics import cosine_distances, retrieval_metrics
from pipeline.models.livi import LiviConfig, LiviModel
from pipeline.train.data import (
    livi_batches,
    mean_text_target,
    probe_dims,
    split_works,
    work_key,
    work_versions,
)
from pipeline.train.loop import EpochCallback, EpochResult, StepCallback, fit


def livi_preset(name: str) -> LiviConfig:
    """``paper``: the reference sizes; ``small``: tiny sizes for CPU smoke runs."""
    if name == "paper":
        return LiviConfig()
    if name == "small":
        return LiviConfig(
            hidden_sizes=(64,), batch_size=4, lr=1e-3, warmup_steps=4, shuffle_buffer=16
        )
    raise ValueError(f"unknown preset {name!r}; use paper or small")


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

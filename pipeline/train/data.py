"""Batches from the extraction's WebDataset shards, for both trainers, without the audio.

LIVI streams segments (encoder states, text target) shard by shard through a shuffle buffer;
WEALY first indexes track -> decoder-state members (json only), then loads a track's states by
random access when a batch needs them. Order and crops depend on (seed, epoch) only, so a
resumed run sees the same batches. Validation and test hold out whole works, never single
versions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from pipeline.errors import UserError
from pipeline.io.webdataset import ArrayRef, ShardSample, index_shard, iter_samples

LiviBatch = tuple[torch.Tensor, torch.Tensor]  # (B, L, d) encoder states, (B, e) text targets
WealyBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (B, T, d), (B, T) valid, (B,)
T = TypeVar("T")


class TrainingDataError(UserError, ValueError):
    """The shards cannot train this model as they are (no targets, too few works, ...)."""


def work_key(meta: dict) -> str:
    """A segment's work; a track without one is a work of its own."""
    return meta.get("work_id") or f"track:{meta['track_id']}"


@dataclass(frozen=True)
class TrackRef:
    """One track's decoder-state members in segment order, for WEALY."""

    track_id: str
    work: str
    decoder: tuple[ArrayRef, ...]

    @property
    def length(self) -> int:
        return sum(ref.shape[0] for ref in self.decoder)

    def load_states(self) -> np.ndarray:
        """(m, d) float32: the decoder states of every segment, concatenated in time order."""
        return np.concatenate([ref.load() for ref in self.decoder]).astype(np.float32)


def index_tracks(shards: list[Path]) -> list[TrackRef]:
    """Tracks with decoder states, with their members; reads only json and .npy headers."""
    segments: dict[str, list[tuple[int, ArrayRef]]] = defaultdict(list)
    works: dict[str, str] = {}
    for shard in shards:
        for _key, meta, refs in index_shard(shard):
            track_id = meta["track_id"]
            works[track_id] = work_key(meta)
            if "decoder" in refs and not meta.get("detector_only"):
                segments[track_id].append((meta["segment_index"], refs["decoder"]))
    tracks = [
        TrackRef(t, works[t], tuple(ref for _, ref in sorted(segments[t], key=lambda s: s[0])))
        for t in sorted(works)
    ]
    return [t for t in tracks if t.length > 0]


def split_works(
    versions: dict[str, int], val_fraction: float, seed: int, test_fraction: float = 0.0
) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(train, validation, test) works, drawn per group: works with several versions, and the
    rest. Validation picks the checkpoint; test works only report (``run evaluate --holdout``).

    Each group is permuted once (seeded): validation takes its first ``round(val_fraction *
    size)``, test the next ``round(test_fraction * size)``, so adding a test split leaves the
    validation works a seed gave before. Of the multi-version works, validation then test get at
    least one each while their fraction is > 0 and training keeps two, so that each can measure
    retrieval: three such works give validation one, four give both one.
    """
    rng = np.random.default_rng(seed)
    multi = sorted(w for w, n in versions.items() if n > 1)
    single = sorted(w for w, n in versions.items() if n <= 1)
    val: set[str] = set()
    test: set[str] = set()
    for group, is_multi in ((multi, True), (single, False)):
        n_val = round(val_fraction * len(group))
        n_test = round(test_fraction * len(group))
        if is_multi and val_fraction > 0 and n_val == 0 and len(group) - n_test >= 3:
            n_val = 1
        if is_multi and test_fraction > 0 and n_test == 0 and len(group) - n_val >= 3:
            n_test = 1
        order = [group[i] for i in rng.permutation(len(group))]
        val.update(order[:n_val])
        test.update(order[n_val : n_val + n_test])
    return frozenset(versions) - val - test, frozenset(val), frozenset(test)


def work_versions(shards: list[Path]) -> dict[str, int]:
    """Number of distinct tracks per work, from the json members only."""
    tracks: dict[str, set[str]] = defaultdict(set)
    for shard in shards:
        for _key, meta, _refs in index_shard(shard):
            tracks[work_key(meta)].add(meta["track_id"])
    return {w: len(t) for w, t in sorted(tracks.items())}


def probe_dims(shards: list[Path]) -> tuple[int, int]:
    """(encoder width, text-target width) of the first sample that has a text target."""
    for shard in shards:
        for _key, _meta, refs in index_shard(shard):
            if "text" in refs and "encoder" in refs:
                return refs["encoder"].shape[1], refs["text"].shape[0]
    raise TrainingDataError(
        "no segment in the shards has a text target (text.npy) and encoder states: nothing to "
        "learn (encoder_states_share 0?)"
    )


def _shuffled(items: Iterable[T], buffer_size: int, rng: np.random.Generator) -> Iterator[T]:
    """Items through a buffer of ``buffer_size``, each drawn at random from it."""
    buffer: list[T] = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= buffer_size:
            yield buffer.pop(int(rng.integers(len(buffer))))
    while buffer:
        yield buffer.pop(int(rng.integers(len(buffer))))


def _targeted_samples(
    shards: list[Path], works: frozenset[str], order: np.ndarray, arrays: frozenset[str]
) -> Iterator[ShardSample]:
    """The samples of ``works`` that have a text target (and every one of ``arrays``; a track
    outside ``encoder_states_share`` has no encoder states), with ``arrays`` loaded."""
    for index in order:
        for sample in iter_samples(shards[index], arrays):
            if arrays <= sample.arrays.keys() and work_key(sample.meta) in works:
                yield sample


def livi_segments(
    shards: list[Path], works: frozenset[str], order: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(encoder states, text target) of the segments of ``works`` that have a target."""
    for sample in _targeted_samples(shards, works, order, frozenset({"encoder", "text"})):
        yield sample.arrays["encoder"], sample.arrays["text"]


def mean_text_target(shards: list[Path], works: frozenset[str]) -> np.ndarray:
    """The mean of the unit text targets of ``works``' segments (text only, no encoder states
    read): the direction that every e5 embedding shares."""
    samples = _targeted_samples(shards, works, np.arange(len(shards)), frozenset({"text"}))
    targets = [s.arrays["text"] / np.linalg.norm(s.arrays["text"]) for s in samples]
    if not targets:
        raise ValueError("no segment of the training works has a text target to centre on")
    return np.mean(targets, axis=0).astype(np.float32)


def livi_batches(
    shards: list[Path],
    works: frozenset[str],
    batch_size: int,
    seed: int,
    epoch: int,
    shuffle_buffer: int = 0,
) -> Iterator[LiviBatch]:
    """Batches of one epoch: shards in a seeded order, segments through a shuffle buffer.

    ``shuffle_buffer`` 0 keeps file order (for validation). The last, smaller batch is kept.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(shards)) if shuffle_buffer else np.arange(len(shards))
    segments = livi_segments(shards, works, order)
    if shuffle_buffer:
        segments = _shuffled(segments, shuffle_buffer, rng)
    batch: list[tuple[np.ndarray, np.ndarray]] = []
    for segment in segments:
        batch.append(segment)
        if len(batch) == batch_size:
            yield _stack_livi(batch)
            batch = []
    if batch:
        yield _stack_livi(batch)


def _stack_livi(batch: list[tuple[np.ndarray, np.ndarray]]) -> LiviBatch:
    encoder = torch.from_numpy(np.stack([e for e, _ in batch]).astype(np.float32))
    text = torch.from_numpy(np.stack([t for _, t in batch]).astype(np.float32))
    return encoder, text


def pad_sequences(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, d) zero-padded float32 and (B, T) bool, True on real states."""
    length = max(len(s) for s in sequences)
    width = sequences[0].shape[1]
    states = np.zeros((len(sequences), length, width), dtype=np.float32)
    valid = np.zeros((len(sequences), length), dtype=bool)
    for i, s in enumerate(sequences):
        states[i, : len(s)] = s
        valid[i, : len(s)] = True
    return torch.from_numpy(states), torch.from_numpy(valid)


def random_crop(states: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random run of ``length`` consecutive states (all of them when there are fewer)."""
    if len(states) <= length:
        return states
    start = int(rng.integers(len(states) - length + 1))
    return states[start : start + length]


def wealy_batches(
    tracks: list[TrackRef],
    works_per_batch: int,
    versions_per_work: int,
    crop: int,
    seed: int,
    epoch: int,
) -> Iterator[WealyBatch]:
    """Batches of ``works_per_batch`` works x up to ``versions_per_work`` versions each.

    Every work with two or more versions (and states) appears once per epoch, so every anchor
    has a positive; labels are work indices within the batch.
    """
    rng = np.random.default_rng([seed, epoch])
    by_work: dict[str, list[TrackRef]] = defaultdict(list)
    for track in tracks:
        by_work[track.work].append(track)
    works = sorted(w for w, ts in by_work.items() if len(ts) > 1)
    if len(works) < 2:
        raise TrainingDataError(
            f"WEALY needs two or more works with several versions to train, found {len(works)}"
        )
    order = [works[i] for i in rng.permutation(len(works))]
    for first in range(0, len(order), works_per_batch):
        chosen = order[first : first + works_per_batch]
        if len(chosen) < 2:
            break  # a batch of one work has no negatives
        sequences, labels = [], []
        for label, work in enumerate(chosen):
            versions = by_work[work]
            picks = rng.permutation(len(versions))[:versions_per_work]
            for i in picks:
                sequences.append(random_crop(versions[i].load_states(), crop, rng))
                labels.append(label)
        states, valid = pad_sequences(sequences)
        yield states, valid, torch.tensor(labels)


def wealy_batch_count(tracks: list[TrackRef], works_per_batch: int) -> int:
    """Batches per epoch of ``wealy_batches`` (for the learning-rate schedule)."""
    counts: dict[str, int] = defaultdict(int)
    for track in tracks:
        counts[track.work] += 1
    works = sum(1 for n in counts.values() if n > 1)
    full, rest = divmod(works, works_per_batch)
    return full + (1 if rest >= 2 else 0)

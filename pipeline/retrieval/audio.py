"""LIVI embeddings straight from audio: decode, segment and the Whisper encoder only.

This is LIVI's point at query time: no transcription and no decoder pass, so a track costs one
encoder pass per 30 s segment. Segmentation follows the extraction settings given (defaults
unless a YAML file says otherwise), which should be those the training shards were made with.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from pipeline.config import ExtractConfig
from pipeline.io.catalog import read_catalog
from pipeline.models.whisper_runtime import WhisperRuntime, load_whisper
from pipeline.records import Rejected, SegmentedTrack
from pipeline.retrieval.embed import TrackMeans, livi_segment_embeddings
from pipeline.retrieval.metrics import RetrievalInputError
from pipeline.stages.encode import encode, log_mel
from pipeline.track import prepare_track
from pipeline.train.livi import LiviModel
from pipeline.train.trained import load_run

log = logging.getLogger(__name__)


def track_encoder_states(
    track: SegmentedTrack, runtime: WhisperRuntime, batch_size: int
) -> Iterator[np.ndarray]:
    """(L, d) float32 encoder states per segment, in batches of ``batch_size`` segments."""
    for first in range(0, len(track.segments), batch_size):
        batch = list(track.segments[first : first + batch_size])
        yield from encode(log_mel(batch, runtime), runtime)  # (B, L, d)


def livi_audio_embeddings(
    run_dir: Path, catalog: Path, config: ExtractConfig, device: str = "cpu"
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(track_id -> embedding, track_id -> rejection reason) for every catalog track."""
    model, values = load_run(run_dir, torch.device(device))
    if not isinstance(model, LiviModel):
        raise RetrievalInputError(f"{run_dir} is a {values['kind']} run; --audio needs LIVI")
    runtime = load_whisper(config.whisper)
    rejected: dict[str, str] = {}

    def segments() -> Iterator[tuple[str, np.ndarray]]:
        for entry in read_catalog(catalog):
            track = prepare_track(entry, config)
            if isinstance(track, Rejected):
                rejected[entry.track_id] = track.reason
                continue
            for state in track_encoder_states(track, runtime, config.whisper.batch_size):
                if state.shape[-1] != values["input_dim"]:
                    raise RetrievalInputError(
                        f"this Whisper gives {state.shape[-1]}-wide states; the run was "
                        f"trained on {values['input_dim']}: use the model it was trained with"
                    )
                yield entry.track_id, state.astype(np.float16)  # as the shards store them

    means = TrackMeans()
    for track_id, embedding in livi_segment_embeddings(model, segments()):
        means.add(track_id, embedding, 1)
    if rejected:
        log.warning("%d track(s) rejected: %s", len(rejected), rejected)
    return means.normalised(), rejected

"""LIVI embeddings straight from audio: decode, segment and the Whisper encoder only.

This is LIVI's point at query time: no transcription and no decoder pass, so a track costs one
encoder pass per 30 s segment. Segmentation follows the extraction settings given (defaults
unless a YAML file says otherwise), which should be those the training shards were made with.
Without a transcript there is no judge to hear lyrics: the singing detector
(``singing.detector``, a small model over the encoder states learned from the judge's verdicts)
picks the windows to embed, and a track with none is rejected ``no_singing``, as extraction
rejects instrumentals. ``singing.detector=none`` embeds every window, as before it existed.

``LiviAudioEmbedder`` serves one process (``run embed --audio``, ``search``);
``embed_tracks_audio`` is the same work as a Dask stage (``run extract --livi-run``), handed
the LIVI run and the detector as ``WeightsSpec``s that each worker loads once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import ExtractConfig
from pipeline.metrics import RetrievalInputError
from pipeline.models.livi import LiviModel, livi_segment_embeddings, livi_spec, load_livi
from pipeline.models.singing_detector import (
    SingingDetector,
    detector_spec,
    load_detector,
    window_scores,
)
from pipeline.models.weights_spec import WeightsSpec
from pipeline.models.whisper_runtime import WhisperRuntime, load_whisper
from pipeline.records import CatalogEntry, Rejected, SegmentedTrack, TrackEmbedding
from pipeline.stages.encode import encode, log_mel
from pipeline.stages.singing_detector import sung_windows
from pipeline.track import prepare_track


def track_encoder_states(
    track: SegmentedTrack, runtime: WhisperRuntime, batch_size: int
) -> Iterator[np.ndarray]:
    """(L, d) float32 encoder states per segment, in batches of ``batch_size`` segments."""
    for first in range(0, len(track.segments), batch_size):
        batch = list(track.segments[first : first + batch_size])
        yield from encode(log_mel(batch, runtime), runtime)  # (B, L, d)


@dataclass(frozen=True)
class LiviAudioEmbedder:
    """A LIVI run, the Whisper encoder it needs and the singing detector (None: every window
    is embedded): one audio file in, one embedding out."""

    model: LiviModel
    runtime: WhisperRuntime
    config: ExtractConfig
    input_dim: int
    detector: SingingDetector | None = None

    @classmethod
    def load(
        cls, run_dir: Path | str, config: ExtractConfig, threads: int = 0
    ) -> LiviAudioEmbedder:
        """The run's LIVI head and ``singing.detector`` on the device of ``config.whisper``."""
        detector = detector_spec(config.singing.detector)
        return cls.from_specs(livi_spec(str(run_dir)), detector, config, threads)

    @classmethod
    def from_specs(
        cls,
        livi: WeightsSpec,
        detector_weights: WeightsSpec | None,
        config: ExtractConfig,
        threads: int = 0,
    ) -> LiviAudioEmbedder:
        """The embedder of checked weights; they and Whisper load once a process."""
        device = config.whisper.device
        model, input_dim = load_livi(livi, device)
        detector = load_detector(detector_weights, device)
        if detector is not None and detector.feature_mean.shape[0] != 2 * input_dim:
            raise RetrievalInputError(
                f"singing.detector {config.singing.detector} reads "
                f"{detector.feature_mean.shape[0] // 2}-wide encoder states, the LIVI run "
                f"{input_dim}-wide: train one on this Whisper's shards (pipeline run train "
                "singing), or --set singing.detector=none"
            )
        return cls(model, load_whisper(config.whisper, threads), config, input_dim, detector)

    def __call__(self, entry: CatalogEntry) -> np.ndarray | Rejected:
        """The track's unit-length embedding (mean of its sung segments'), or why it has none."""
        track = prepare_track(entry, self.config)
        if isinstance(track, Rejected):
            return track
        result = self.embed_segmented(track)
        return result if isinstance(result, Rejected) else result.embedding

    def encoder_states(self, track: SegmentedTrack) -> list[np.ndarray]:
        """(L, d) float16 encoder states per segment, as the training shards hold them."""
        segments = []
        for states in track_encoder_states(track, self.runtime, self.config.whisper.batch_size):
            if states.shape[-1] != self.input_dim:
                raise RetrievalInputError(
                    f"this Whisper gives {states.shape[-1]}-wide states; the run was trained "
                    f"on {self.input_dim}: use the model it was trained with (--whisper-model)"
                )
            segments.append(states.astype(np.float16))
        return segments

    def embed_segmented(self, track: SegmentedTrack) -> TrackEmbedding | Rejected:
        return self.embed_track_states(track, self.encoder_states(track))

    def embed_track_states(
        self, track: SegmentedTrack, states: list[np.ndarray]
    ) -> TrackEmbedding | Rejected:
        """The mean embedding of the windows the detector calls sung (of every window without
        a detector), or the track rejected ``no_singing`` with the detector's scores."""
        if self.detector is not None:
            scores = window_scores(self.detector, states)
            kept = sung_windows(track, scores, self.config.singing)
            if isinstance(kept, Rejected):
                return kept
            states = [states[i] for i in kept]
        return TrackEmbedding(track.info, self.embed_states(states), len(states))

    def embed_states(self, segments: list[np.ndarray]) -> np.ndarray:
        """The LIVI head on each segment's states; their mean, unit length."""
        pairs = livi_segment_embeddings(self.model, (("", s) for s in segments))
        mean = np.mean([embedding for _, embedding in pairs], axis=0, dtype=np.float64)
        return (mean / np.linalg.norm(mean)).astype(np.float32)


def embed_tracks_audio(
    tracks: Sequence[SegmentedTrack | Rejected],
    config: ExtractConfig,
    threads: int = 0,
    *,
    livi: WeightsSpec,
    detector: WeightsSpec | None,
) -> list[TrackEmbedding | Rejected]:
    """LIVI-only extraction's Whisper stage: the encoder, the LIVI head and the detector."""
    embedder = LiviAudioEmbedder.from_specs(livi, detector, config, threads)
    return [t if isinstance(t, Rejected) else embedder.embed_segmented(t) for t in tracks]

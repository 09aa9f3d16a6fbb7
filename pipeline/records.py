"""Typed records that flow between stages. Frozen, so a stage can never edit its input."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CatalogEntry:
    """One catalog row; ``audio_path`` is absolute or an fsspec URL."""

    track_id: str
    audio_path: str
    line: int
    work_id: str | None = None
    title: str | None = None
    artist: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A track that cannot be processed: a row in the output, never an exception."""

    track_id: str
    stage: str
    reason: str
    detail: str


@dataclass(frozen=True)
class DecodedAudio:
    entry: CatalogEntry
    samples: np.ndarray  # (n,) float32 mono
    sample_rate_hz: int
    source_duration_s: float | None  # container's duration, None when unknown
    truncated: bool  # longer than max_duration_s; the rest was not decoded
    note: str = ""  # e.g. a decoding error after some audio, which was kept


@dataclass(frozen=True)
class AudioSegment:
    index: int
    start_s: float
    end_s: float
    samples: np.ndarray  # (segment_s * sample_rate_hz,) float32, zero-padded


@dataclass(frozen=True)
class TrackInfo:
    """What the tracks table says about a processed track, without its samples."""

    entry: CatalogEntry
    duration_s: float  # decoded duration, at most max_duration_s
    truncated: bool
    note: str
    mean_vocalness: float | None  # None in fixed segmentation mode


@dataclass(frozen=True)
class SegmentedTrack:
    info: TrackInfo
    segments: tuple[AudioSegment, ...]


@dataclass(frozen=True)
class Transcript:
    prompt: tuple[int, ...]  # tokens given to the decoder before the text
    tokens: tuple[int, ...]  # generated text tokens
    text: str
    language: str  # decoded in: the catalog's, --language, or the detected one (a track's vote)
    language_probability: float  # the probability detection gave that language
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float
    # Decoded with timestamps and continued (``densify``): its tokens follow another prompt
    # than ``prompt``, so the teacher-forced pass cannot check them against its argmax.
    timestamped: bool = False
    # Its decoding ended in a loop, cut after the phrase's second occurrence (``cut_loop``):
    # judged on what remains, never settled by the fallback's checks.
    looped: bool = False
    # The window's own likeliest language and its probability, whatever it was decoded in.
    detected_language: str | None = None
    detected_language_probability: float | None = None


@dataclass(frozen=True)
class SegmentFeatures:
    index: int
    start_s: float
    end_s: float
    encoder_states: np.ndarray  # (L, d) float16
    decoder_states: np.ndarray  # (m, d) float16, one row per text token
    transcript: Transcript
    token_agreement: float | None  # teacher-forced argmax == generated token; None at T>0
    clean_text: str
    text_embedding: np.ndarray | None  # (e,) float32, None when unsung or the text is too short
    singing: str = "sung"  # the judgement: sung, or why not (see stages/singing.py)

    @property
    def sung(self) -> bool:
        return self.singing == "sung"


@dataclass(frozen=True)
class TrackFeatures:
    info: TrackInfo
    segments: tuple[SegmentFeatures, ...]
    no_singing: str | None = None  # evidence, when kept flagged (singing.keep_unsung_tracks)
    unsung_samples: bool = False  # unsung windows get shard samples (singing.keep_unsung_states)

    @property
    def language(self) -> str | None:
        """The language most sung segments were decoded in; ties go to the higher total
        probability."""
        return self._most(lambda t: (t.language, t.language_probability))

    @property
    def detected_language(self) -> str | None:
        """The language detected in most sung segments, whatever they were decoded in."""
        return self._most(lambda t: (t.detected_language, t.detected_language_probability))

    def _most(
        self, language: Callable[[Transcript], tuple[str | None, float | None]]
    ) -> str | None:
        votes: dict[str, tuple[int, float]] = {}
        for s in self.segments:
            if not s.sung and self.no_singing is None:
                continue
            code, probability = language(s.transcript)
            if code is None:
                continue
            count, prob = votes.get(code, (0, 0.0))
            votes[code] = (count + 1, prob + (probability or 0.0))
        return max(votes, key=votes.__getitem__) if votes else None


@dataclass(frozen=True)
class TrackEmbedding:
    """LIVI-only extraction's result: the track's audio embedding, without transcripts."""

    info: TrackInfo
    embedding: np.ndarray  # (e,) float32, unit length: the mean of its windows' LIVI embeddings
    segment_count: int  # windows the encoder and the LIVI head saw

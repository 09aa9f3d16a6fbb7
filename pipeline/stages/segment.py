"""Cut a track into fixed-length segments for Whisper.

``fixed`` mode (the default) cuts the whole track every ``hop_s`` seconds; Whisper then judges
each segment (``stages/singing.py``), because Silero misses singing under a band.
``vocal`` mode follows LIVI (../shared/REFERENCES.md): Silero VAD (shipped in faster-whisper)
scores 32 ms windows; windows above the threshold form regions, close regions merge, a region
shorter than a segment grows on both sides with the surrounding audio (zero-padded only where
the track ends), and regions are cut into segments, the last one zero-padded.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from faster_whisper.vad import SileroVADModel, get_vad_model

from pipeline.config import SegmentConfig
from pipeline.records import (
    AudioSegment,
    DecodedAudio,
    Rejected,
    SegmentedTrack,
    TrackInfo,
)

STAGE = "segment"
VAD_WINDOW_SAMPLES = 512  # Silero's window at 16 kHz
VAD_RATE_HZ = 16_000


@functools.cache
def _vad_model() -> SileroVADModel:
    return get_vad_model()


def vocal_probabilities(samples: np.ndarray) -> np.ndarray:
    """Silero's speech probability per 512-sample window, shape (ceil(n / 512),)."""
    pad = (-samples.shape[0]) % VAD_WINDOW_SAMPLES
    padded = np.pad(samples, (0, pad))
    return np.asarray(_vad_model()(padded), dtype=np.float32).reshape(-1)


def vocal_regions(probabilities: np.ndarray, config: SegmentConfig) -> list[tuple[int, int]]:
    """Merged vocal regions as (start, end) sample indices."""
    vocal = np.concatenate([[False], probabilities > config.vad_threshold, [False]])
    edges = np.flatnonzero(np.diff(vocal.astype(np.int8)))
    runs = [
        (int(s) * VAD_WINDOW_SAMPLES, int(e) * VAD_WINDOW_SAMPLES) for s, e in edges.reshape(-1, 2)
    ]
    merged: list[tuple[int, int]] = []
    max_gap = int(config.merge_gap_s * VAD_RATE_HZ)
    for start, end in runs:
        if merged and start - merged[-1][1] <= max_gap:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    min_len = int(config.min_region_s * VAD_RATE_HZ)
    return [(s, e) for s, e in merged if e - s >= min_len]


def _grow_to(start: int, end: int, length: int, total: int) -> tuple[int, int]:
    """Widen [start, end) equally on both sides to ``length`` samples, within [0, total)."""
    if end - start >= length:
        return start, end
    start = max(0, start - (length - (end - start)) // 2)
    end = min(total, start + length)
    return max(0, end - length), end


def _cut(start: int, end: int, length: int, hop: int) -> list[tuple[int, int]]:
    """(start, end) of pieces of at most ``length`` samples, every ``hop``, in [start, end)."""
    return [
        (s, min(s + length, end))
        for s in range(start, max(end - length, start) + hop, hop)
        if s < end
    ]


def region_spans(regions: list[tuple[int, int]], total: int, length: int) -> list[tuple[int, int]]:
    """Segments of ``length`` samples covering vocal ``regions``, each grown to a full length."""
    spans: list[tuple[int, int]] = []
    for start, end in regions:
        spans.extend(_cut(*_grow_to(start, min(end, total), length, total), length, length))
    return spans


def segment_audio(
    audio: DecodedAudio, config: SegmentConfig, detector_samples: np.ndarray | None = None
) -> SegmentedTrack | Rejected:
    """Split ``audio`` into ``segment_s`` pieces (vocal regions or a fixed grid); Silero hears
    ``detector_samples`` (e.g. the vocal stem) where given, else ``audio`` itself."""
    rate = audio.sample_rate_hz
    samples = audio.samples
    length = round(config.segment_s * rate)
    total = samples.shape[0]
    track_id = audio.entry.track_id
    mean_vocalness: float | None = None
    if config.mode == "fixed":
        spans = _cut(0, total, length, round(config.hop_s * rate))
    elif config.mode == "vocal":
        if rate != VAD_RATE_HZ:
            raise ValueError(f"vocal segmentation needs {VAD_RATE_HZ} Hz audio, got {rate}")
        probabilities = vocal_probabilities(
            samples if detector_samples is None else detector_samples
        )
        mean_vocalness = float(probabilities.mean())
        if mean_vocalness < config.min_mean_vocalness:
            return Rejected(
                track_id,
                STAGE,
                "low_vocalness",
                f"mean Silero vocalness {mean_vocalness:.2f} < segment.min_mean_vocalness "
                f"{config.min_mean_vocalness} (LIVI's rule, segment.mode=vocal); Silero hears "
                "speech, not singing under a band: the default segment.mode=fixed lets Whisper "
                "judge every window, or lower segment.min_mean_vocalness",
            )
        regions = vocal_regions(probabilities, config)
        if not regions:
            return Rejected(
                track_id,
                STAGE,
                "no_vocals",
                f"no Silero window above segment.vad_threshold {config.vad_threshold} for "
                f"segment.min_region_s {config.min_region_s} (segment.mode=vocal); the default "
                "segment.mode=fixed lets Whisper judge every window",
            )
        spans = region_spans(regions, total, length)
    else:
        raise ValueError(f"unknown segmentation mode {config.mode!r}; known: vocal, fixed")
    segments = tuple(
        AudioSegment(i, s / rate, e / rate, np.pad(samples[s:e], (0, length - (e - s))))
        for i, (s, e) in enumerate(spans)
    )
    info = TrackInfo(audio.entry, total / rate, audio.truncated, audio.note, mean_vocalness)
    return SegmentedTrack(info, segments)


def audio_from(
    segments: Sequence[AudioSegment], start_s: float, length_s: float, rate: int
) -> AudioSegment:
    """``length_s`` of the track's audio from ``start_s``, rebuilt from its segments (zeros
    where none covers the time: past the end, a gap between vocal regions): the audio a
    transcript's seek decodes, which may reach into the next window."""
    length = round(length_s * rate)
    samples = np.zeros(length, dtype=np.float32)
    filled = np.zeros(length, dtype=bool)
    begin = round(start_s * rate)
    for segment in segments:
        first = round(segment.start_s * rate)
        last = first + round((segment.end_s - segment.start_s) * rate)  # its audio, not padding
        lo, hi = max(first, begin), min(last, begin + length)
        if lo >= hi:
            continue
        free = ~filled[lo - begin : hi - begin]
        samples[lo - begin : hi - begin][free] = segment.samples[lo - first : hi - first][free]
        filled[lo - begin : hi - begin] = True
    return AudioSegment(-1, start_s, start_s + length_s, samples)

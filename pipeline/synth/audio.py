"""Sample-level helpers shared by the generators: one rate, WAV in and out, RMS, regions."""

from __future__ import annotations

import shutil
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

RATE_HZ = 44_100  # every stem is rendered at this rate; files are resampled when encoded

Spans = Sequence[tuple[float, float]]


def require_tool(tool: str) -> str:
    """The tool's path; a clear error when it is missing instead of a bare FileNotFoundError."""
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} is not installed; run `make setup` (it installs {tool})")
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """16-bit mono WAV (what espeak-ng writes) as float32 in [-1, 1], and its rate."""
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return data.astype(np.float32) / 32768.0, w.getframerate()


def write_wav(path: Path, samples: np.ndarray, rate_hz: int = RATE_HZ) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(pcm.tobytes())


def resample(samples: np.ndarray, rate_hz: int) -> np.ndarray:
    """Linear interpolation to ``RATE_HZ``: enough for espeak-ng's band-limited speech."""
    if rate_hz == RATE_HZ:
        return samples.astype(np.float32)
    n_out = int(len(samples) * RATE_HZ / rate_hz)
    positions = np.arange(n_out) * (rate_hz / RATE_HZ)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def span_mask(spans: Spans, n_samples: int) -> np.ndarray:
    """True on the samples inside any of ``spans`` (seconds)."""
    mask = np.zeros(n_samples, dtype=bool)
    for start_s, end_s in spans:
        mask[max(0, round(start_s * RATE_HZ)) : min(n_samples, round(end_s * RATE_HZ))] = True
    return mask


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def level_db(voice: np.ndarray, accompaniment: np.ndarray, spans: Spans) -> float:
    """The voice level as the catalog records it: 20 log10 of the voice's RMS over the
    accompaniment's RMS, both measured over the voiced spans only."""
    mask = span_mask(spans, len(voice))
    return 20.0 * np.log10(rms(voice[mask]) / rms(accompaniment[mask]))

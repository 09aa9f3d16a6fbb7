"""Voice and band mixed like a record: the voice at a set level, in an optional room.

The level is ``20 log10(rms(voice) / rms(accompaniment))`` with both RMS taken over the voiced
spans only, so an instrumental intro does not count. Records sit the voice within a few dB of
the band (-6 to +6 dB here); the old generators put it far above, which flattered detectors.
Reverb is linear and applied to each stem with the same room, so the level set here is the
level measured on the stems that are summed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.synth.audio import RATE_HZ, Spans, level_db, rms, span_mask

PEAK = 0.8  # the mixture's peak after normalising: headroom for lossy encoders
WET_GAIN = 0.45  # reverb tail level relative to the dry signal
_BLOCK = 1 << 17  # overlap-add block; longer than any room's impulse response


@dataclass(frozen=True)
class Mix:
    mixture: np.ndarray
    voice: np.ndarray  # the stems as summed into the mixture (same scale)
    accompaniment: np.ndarray


def room_impulse(decay_s: float, seed: int) -> np.ndarray:
    """Decaying noise reaching -60 dB after ``decay_s``, scaled to unit energy."""
    n = min(int(decay_s * RATE_HZ), _BLOCK)
    rng = np.random.default_rng(seed)
    impulse = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    return (impulse / np.sqrt(np.sum(impulse**2))).astype(np.float32)


def reverb(samples: np.ndarray, impulse: np.ndarray) -> np.ndarray:
    """``samples`` plus ``WET_GAIN`` times their convolution with ``impulse``, by overlap-add
    FFT in blocks: linear (a sum of stems gets the sum of their reverbs) and fast on long songs."""
    n = len(samples)
    blocks = -(-n // _BLOCK)
    padded = np.zeros(blocks * _BLOCK, np.float32)
    padded[:n] = samples
    size = 2 * _BLOCK
    spectrum = np.fft.rfft(impulse, size)
    wet = np.zeros((blocks + 1) * _BLOCK, np.float32)
    for first in range(0, blocks, 16):  # 16 blocks at a time bounds the memory
        chunk = padded[first * _BLOCK : (first + 16) * _BLOCK].reshape(-1, _BLOCK)
        out = np.fft.irfft(np.fft.rfft(chunk, size, axis=1) * spectrum, size, axis=1)
        offset = first * _BLOCK
        wet[offset : offset + chunk.size] += out[:, :_BLOCK].ravel()
        wet[offset + _BLOCK : offset + _BLOCK + chunk.size] += out[:, _BLOCK:].ravel()
    return (samples + WET_GAIN * wet[:n]).astype(np.float32)


def mix(
    voice: np.ndarray | None,
    accompaniment: np.ndarray,
    voiced: Spans,
    vocal_db: float | None,
    reverb_s: float = 0.0,
    seed: int = 0,
) -> Mix:
    """Sum the stems with the voice at ``vocal_db`` over the ``voiced`` spans, after the same
    room on both (``reverb_s`` 0: dry), and scale the whole to ``PEAK``. No voice: the band."""
    if voice is not None and len(voice) != len(accompaniment):
        raise ValueError(f"stems differ in length: {len(voice)} vs {len(accompaniment)}")
    if reverb_s > 0:
        impulse = room_impulse(reverb_s, seed)
        accompaniment = reverb(accompaniment, impulse)
        voice = reverb(voice, impulse) if voice is not None else None
    if voice is None or vocal_db is None:
        voice = np.zeros_like(accompaniment)
    else:
        mask = span_mask(voiced, len(voice))
        gain = 10 ** (vocal_db / 20) * rms(accompaniment[mask]) / rms(voice[mask])
        voice = (voice * gain).astype(np.float32)
    mixture = voice + accompaniment
    scale = PEAK / max(1e-9, float(np.abs(mixture).max()))
    return Mix(mixture * scale, voice * scale, accompaniment * scale)


def measured_db(result: Mix, voiced: Spans) -> float:
    """The voice level of a mix, measured the way the catalog defines it."""
    return level_db(result.voice, result.accompaniment, voiced)

"""espeak-ng voices: a "sung" line that follows a melody in the song's key, and plain narration.

espeak-ng cannot sing, but SSML gets close enough to stress a detector: with the intonation
range flattened to 0 % every word holds one pitch, and ``<prosody pitch>`` per word moves it
along a note sequence; a slower rate, longer word gaps and a light vibrato do the rest. The
pitch parameter (``-p``, 0-99) moves the voice by about a fifth of a semitone per unit, so a
note ``s`` semitones above the base is ``pitch + 5 s``, written as a percentage of ``pitch``.
Lines come back trimmed of espeak's leading and trailing silence, so where a line is placed is
exactly where the voice is.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from pipeline.synth.audio import RATE_HZ, read_wav, require_tool, resample

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
UNITS_PER_SEMITONE = 5.0  # espeak-ng pitch units per semitone, measured on several voices
SILENCE_DB = -50.0  # below the loudest 10 ms frame: espeak writes digital silence between words


def espeak(
    text: str,
    voice: str,
    words_per_minute: int,
    pitch: int,
    work_dir: Path,
    *,
    ssml: bool = False,
    word_gap_10ms: int = 0,
) -> np.ndarray:
    """espeak-ng's rendering of ``text`` (plain or SSML) at ``RATE_HZ``, untrimmed."""
    out = work_dir / "voice.wav"
    command = [require_tool("espeak-ng"), "-v", voice, "-s", str(words_per_minute)]
    command += ["-p", str(pitch)]
    if ssml:
        command.append("-m")
    if word_gap_10ms:
        command += ["-g", str(word_gap_10ms)]
    subprocess.run([*command, "-w", str(out), text], check=True, capture_output=True)
    samples, rate_hz = read_wav(out)
    return resample(samples, rate_hz)


def trim(samples: np.ndarray) -> np.ndarray:
    """``samples`` from the first to the last 10 ms frame within ``SILENCE_DB`` of the loudest."""
    frame = RATE_HZ // 100
    n_frames = len(samples) // frame
    if n_frames == 0:
        return samples
    energy = np.square(samples[: n_frames * frame].reshape(n_frames, frame)).mean(axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** (SILENCE_DB / 10))
    return samples[loud[0] * frame : (loud[-1] + 1) * frame]


def semitones(degrees: Sequence[int], minor: bool) -> list[int]:
    """Scale degrees (0: tonic, may be negative or above 6) as semitones above the tonic."""
    scale = MINOR if minor else MAJOR
    return [12 * (d // 7) + scale[d % 7] for d in degrees]


def melody_ssml(words: Sequence[str], notes: Sequence[int], pitch: int) -> str:
    """SSML holding each word on its note (semitones above the voice's base ``pitch``)."""
    parts = []
    for word, note in zip(words, notes, strict=True):
        target = float(np.clip(pitch + UNITS_PER_SEMITONE * note, 0, 99))
        percent = 100.0 * (target - pitch) / max(pitch, 1)
        parts.append(f'<prosody pitch="{percent:+.0f}%">{escape(word)}</prosody>')
    return f'<speak><prosody range="0%">{" ".join(parts)}</prosody></speak>'


def vibrato(samples: np.ndarray, depth_semitones: float, rate_hz: float) -> np.ndarray:
    """A periodic pitch wobble made by reading ``samples`` through a modulated delay."""
    # A delay d(t) = D sin(2 pi f t) bends the pitch by 2 pi f D (relative): solve for D.
    depth = (2 ** (depth_semitones / 12) - 1) / (2 * np.pi * rate_hz) * RATE_HZ  # samples
    n = np.arange(len(samples))
    positions = n - depth * (1 + np.sin(2 * np.pi * rate_hz * n / RATE_HZ))
    return np.interp(positions, n, samples, left=0.0).astype(np.float32)


def sing_line(
    text: str,
    voice: str,
    words_per_minute: int,
    pitch: int,
    degrees: Sequence[int],
    minor: bool,
    work_dir: Path,
) -> np.ndarray:
    """One lyric line sung: word ``i`` on scale degree ``degrees[i % len(degrees)]``; trimmed."""
    words = text.split()
    notes = semitones([degrees[i % len(degrees)] for i in range(len(words))], minor)
    ssml = melody_ssml(words, notes, pitch)
    samples = espeak(ssml, voice, words_per_minute, pitch, work_dir, ssml=True, word_gap_10ms=5)
    return vibrato(trim(samples), depth_semitones=0.4, rate_hz=5.5)


def speak_line(
    text: str, voice: str, words_per_minute: int, pitch: int, work_dir: Path
) -> np.ndarray:
    """One line of plain narration, trimmed."""
    return trim(espeak(text, voice, words_per_minute, pitch, work_dir))

"""A dense band under the voice: pads, bass, drums, cymbals, and optionally guitar and a lead.

A sparse accompaniment flatters vocal detectors, so this one fills the spectrum where real
records do: sustained detuned pads over a I-V-vi-IV (or minor) progression, a bass line,
kick, snare (noise burst plus tone) and hi-hats, noise-like rides and a crash on every
section start, a clipped power-chord "guitar" on some tracks and a synth lead in the vocal
range (the hard case: a melody that is not a voice). Each layer is rendered once as a loop of
a few bars and tiled, then switched on per section, so a 4-minute song takes a second or
two. numpy only; the same seed gives the same samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.synth.audio import RATE_HZ
from pipeline.synth.structure import Section

# Chords as semitones above the key, one per bar, four bars to a loop.
MAJOR_PROGRESSION = ((0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12))
MINOR_PROGRESSION = ((0, 3, 7), (8, 12, 15), (3, 7, 10), (10, 14, 17))
LOOP_BARS = 4
DETUNE_CENTS = (-9.0, 0.0, 8.0)
# Layer gains: a rough balance of a pop mix, before the whole is normalised.
GAINS = {
    "pad": 0.16,
    "bass": 0.30,
    "kick": 0.55,
    "snare": 0.32,
    "hats": 0.10,
    "ride": 0.07,
    "crash": 0.16,
    "guitar": 0.10,
    "lead": 0.12,
}
# Which layers play in which section ("sparse" is the bed under spoken word).
LAYERS = {
    "intro": ("pad", "bass", "hats"),
    "verse": ("pad", "bass", "kick", "snare", "hats"),
    "chorus": ("pad", "bass", "kick", "snare", "ride", "hats", "guitar"),
    "break": ("pad", "bass", "kick", "snare", "ride", "guitar"),
    "outro": ("pad", "bass", "kick", "hats"),
    "sparse": ("pad",),
}
FADE_OUT_S = 3.0


@dataclass(frozen=True)
class Note:
    start_s: float
    end_s: float
    semitone: int  # above the key


def _decay(length: int, per_s: float) -> np.ndarray:
    return np.exp(-np.arange(length, dtype=np.float32) * (per_s / RATE_HZ))


def _highpass(noise: np.ndarray) -> np.ndarray:
    """A first difference: white noise tilted towards the top, like metal or a snare wire."""
    return np.diff(noise, prepend=0.0).astype(np.float32)


def _place(loop: np.ndarray, onsets_s: Sequence[float], sound: np.ndarray) -> None:
    """Add ``sound`` at each onset, wrapping around the loop's end."""
    for onset_s in onsets_s:
        start = round(onset_s * RATE_HZ) % len(loop)
        head = min(len(sound), len(loop) - start)
        loop[start : start + head] += sound[:head]
        loop[: len(sound) - head] += sound[head:]


def _saw(freq_hz: float, length: int) -> np.ndarray:
    """A bright saw from its phase (aliasing stays 30 dB down at these pitches)."""
    phase = (np.arange(length, dtype=np.float64) * (freq_hz / RATE_HZ)) % 1.0
    return (2.0 * phase - 1.0).astype(np.float32)


def _pad_loop(key_hz: float, progression: Sequence[Sequence[int]], bar: int) -> np.ndarray:
    """Each bar's chord held by detuned saws, slow attack and a short release; a little
    smoothing takes the fizz off the top but leaves the mids as full as a synth pad's."""
    loop = np.zeros(bar * len(progression), np.float32)
    attack = np.minimum(1.0, np.arange(bar) / (0.45 * RATE_HZ))
    release = np.minimum(1.0, (bar - np.arange(bar)) / (0.12 * RATE_HZ))
    envelope = (attack * release).astype(np.float32)
    for i, chord in enumerate(progression):
        tones = [key_hz * 2 ** (s / 12) for s in chord] + [key_hz * 2 ** (chord[0] / 12 - 1)]
        voice = sum(_saw(f * 2 ** (c / 1200), bar) for f in tones for c in DETUNE_CENTS)
        loop[i * bar : (i + 1) * bar] = envelope * voice
    smooth = np.ones(6, np.float32) / 6
    return np.convolve(loop, smooth, mode="same").astype(np.float32)


def _bass_loop(
    key_hz: float, progression: Sequence[Sequence[int]], bar: int, rng: np.random.Generator
) -> np.ndarray:
    """Roots (and a fifth) in a drawn eighth-note pattern, plucked and slightly saturated."""
    eighth = bar // 8
    pattern = [0, *sorted(rng.choice(np.arange(1, 8), size=3, replace=False).tolist())]
    loop = np.zeros(bar * len(progression), np.float32)
    for i, chord in enumerate(progression):
        for j, step in enumerate(pattern):
            f = key_hz / 2 * 2 ** ((chord[0] + (7 if j == 3 else 0)) / 12)
            while f > 130.0:
                f /= 2
            length = eighth * 2
            t = np.arange(length, dtype=np.float32) / RATE_HZ
            tone = np.sin(2 * np.pi * f * t) + 0.5 * np.sin(4 * np.pi * f * t)
            tone *= _decay(length, 6.0) * np.minimum(1.0, t / 0.005)
            _place(loop, [(i * bar + step * eighth) / RATE_HZ], np.tanh(1.5 * tone))
    return loop


def _drum_loops(bar: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Kick, snare, hats and ride over eight bars; the last bar ends in a snare fill."""
    n = bar * 2 * LOOP_BARS
    beat_s = bar / 4 / RATE_HZ
    loops = {name: np.zeros(n, np.float32) for name in ("kick", "snare", "hats", "ride")}
    length = int(0.35 * RATE_HZ)
    t = np.arange(length, dtype=np.float32) / RATE_HZ
    sweep_hz = 48 + 90 * np.exp(-t * 35)
    kick = np.sin(2 * np.pi * np.cumsum(sweep_hz) / RATE_HZ) * _decay(length, 9.0)
    snare_len = int(0.25 * RATE_HZ)
    snare = _highpass(rng.standard_normal(snare_len).astype(np.float32)) * 0.5
    snare = snare * _decay(snare_len, 16.0) + 0.6 * np.sin(
        2 * np.pi * 185 * t[:snare_len]
    ) * _decay(snare_len, 28.0)
    hat_len = int(0.1 * RATE_HZ)
    hat = _highpass(rng.standard_normal(hat_len).astype(np.float32)) * _decay(hat_len, 40.0)
    ride = _metal(int(1.2 * RATE_HZ), rng, decay_per_s=3.0)  # rings into the next hit: a wash
    extra_kick = float(rng.choice([2.5, 3.5, 1.5]))  # a syncopated kick in some bars
    bars = 2 * LOOP_BARS
    for b in range(bars):
        start_s = b * 4 * beat_s
        kicks = [0.0, 2.0] + ([extra_kick] if b % 2 else [])
        _place(loops["kick"], [start_s + k * beat_s for k in kicks], kick)
        snares = [1.0, 3.0] if b < bars - 1 else [1.0, 2.0, 2.5, 3.0, 3.25, 3.5, 3.75]
        _place(loops["snare"], [start_s + s * beat_s for s in snares], snare)
        _place(loops["hats"], [start_s + e * beat_s / 2 for e in range(8)], hat)
        _place(loops["ride"], [start_s + q * beat_s for q in range(4)], ride)
    return loops


def _metal(length: int, rng: np.random.Generator, decay_per_s: float) -> np.ndarray:
    """Cymbal: bright noise plus a cluster of inharmonic partials, decaying."""
    t = np.arange(length, dtype=np.float32) / RATE_HZ
    partials = rng.uniform(3000, 9000, size=6).astype(np.float32)[:, None]
    tone = np.sign(np.sin(2 * np.pi * partials * t)).mean(axis=0)
    noise = _highpass(rng.standard_normal(length).astype(np.float32))
    return (0.6 * noise + 0.4 * tone) * _decay(length, decay_per_s)


def _guitar_loop(key_hz: float, progression: Sequence[Sequence[int]], bar: int) -> np.ndarray:
    """Power chords (root, fifth, octave) in eighth-note chugs, clipped hard like an amp."""
    loop = np.zeros(bar * len(progression), np.float32)
    eighth = bar // 8
    t = np.arange(bar, dtype=np.float32) / RATE_HZ
    chug = np.tile(_decay(eighth, 7.0), 8)
    chug = np.pad(chug, (0, bar - len(chug)))
    for i, chord in enumerate(progression):
        root = key_hz * 2 ** (chord[0] / 12)
        while root > 165.0:
            root /= 2
        dry = sum(
            np.sin(2 * np.pi * root * r * 2 ** (c / 1200) * t)
            for r in (1.0, 1.5, 2.0)
            for c in (-6.0, 6.0)
        )
        loop[i * bar : (i + 1) * bar] = np.tanh(6.0 * dry * chug)
    smooth = np.ones(4, np.float32) / 4  # take the edge off the clipping
    return np.convolve(loop, smooth, mode="same").astype(np.float32)


def _lead(notes: Sequence[Note], key_hz: float, n: int) -> np.ndarray:
    """A square-ish synth with vibrato, one legato note each, an octave above the key."""
    out = np.zeros(n, np.float32)
    for note in notes:
        start, end = round(note.start_s * RATE_HZ), min(n, round(note.end_s * RATE_HZ))
        if end <= start:
            continue
        t = np.arange(end - start, dtype=np.float32) / RATE_HZ
        f = 2 * key_hz * 2 ** (note.semitone / 12)
        wobble = 0.01 / (2 * np.pi * 5.5) * np.sin(2 * np.pi * 5.5 * t)  # +-1 % of pitch
        phase = 2 * np.pi * f * (t + wobble)
        tone = sum(np.sin(k * phase) / k for k in (1, 3, 5, 7))
        edge = np.minimum(1.0, np.minimum(t / 0.03, (t[-1] - t) / 0.05 + 1e-3))
        out[start:end] += tone * edge
    return out


def _section_gains(sections: Sequence[Section], layer: str, n: int) -> np.ndarray | None:
    """The layer's on/off over the song, with 20 ms ramps at changes; None if it never plays."""
    gains = np.zeros(n, np.float32)
    for s in sections:
        if layer in LAYERS[s.name]:
            gains[round(s.start_s * RATE_HZ) : round(s.end_s * RATE_HZ)] = 1.0
    if not gains.any():
        return None
    ramp = int(0.02 * RATE_HZ)
    for s in sections[1:]:
        lo = max(1, round(s.start_s * RATE_HZ) - ramp // 2)
        hi = min(n - 1, lo + ramp)
        if hi > lo and gains[lo - 1] != gains[hi]:
            gains[lo:hi] = np.linspace(gains[lo - 1], gains[hi], hi - lo, dtype=np.float32)
    return gains


def accompaniment(
    duration_s: float,
    key_hz: float,
    bpm: float,
    seed: int,
    *,
    sections: Sequence[Section] = (),
    minor: bool = False,
    guitar: bool = False,
    lead: Sequence[Note] = (),
    sparse: bool = False,
) -> np.ndarray:
    """The band for a song of ``duration_s``; ``sections`` switch layers on and off (none:
    a verse throughout), a crash marks each section start. ``sparse``: a pad alone, the bed
    under spoken word. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * RATE_HZ)
    if not sections:
        sections = (Section("verse", 0.0, duration_s),)
    if sparse:
        sections = [Section("sparse", s.start_s, s.end_s) for s in sections]
    progression = MINOR_PROGRESSION if minor else MAJOR_PROGRESSION
    bar = round(4 * 60.0 / bpm * RATE_HZ)
    loops = {"pad": _pad_loop(key_hz, progression, bar)}
    loops["bass"] = _bass_loop(key_hz, progression, bar, rng)
    loops.update(_drum_loops(bar, rng))
    if guitar:
        loops["guitar"] = _guitar_loop(key_hz, progression, bar)
    out = np.zeros(n, np.float32)
    for layer, loop in loops.items():
        gains = _section_gains(sections, layer, n)
        if gains is not None:
            out += GAINS[layer] * gains * np.resize(loop, n)
    crash = _metal(int(2.0 * RATE_HZ), rng, decay_per_s=2.2)
    for s in sections[1:] if not sparse else ():
        start = round(s.start_s * RATE_HZ)
        piece = crash[: n - start]
        out[start : start + len(piece)] += GAINS["crash"] * piece
    if lead:
        out += GAINS["lead"] * _lead(lead, key_hz, n)
    last_s = sections[-1].end_s - sections[-1].start_s
    fade = min(n, round(min(FADE_OUT_S, last_s) * RATE_HZ))
    out[n - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return out

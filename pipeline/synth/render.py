"""One track rendered from its spec: the voice placed by the song's form, over its band.

The true voiced spans come from the same placements that put the (trimmed) lines into the
voice stem, so the ground truth cannot drift from the audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.synth.accompaniment import Note, accompaniment
from pipeline.synth.audio import RATE_HZ
from pipeline.synth.mix import Mix, mix
from pipeline.synth.spec import TrackSpec
from pipeline.synth.structure import Song, plan_song
from pipeline.synth.voice import semitones, sing_line, speak_line

LEAD_PHRASE_S = (2.5, 4.5)  # an instrumental's lead phrases stand where lines would be


@dataclass(frozen=True)
class RenderedTrack:
    spec: TrackSpec
    song: Song
    mix: Mix
    regions: list[tuple[float, float]]  # true voiced spans in seconds; [] for instrumentals

    @property
    def duration_s(self) -> float:
        return len(self.mix.mixture) / RATE_HZ


def _rotate(melody: tuple[int, ...], shift: int) -> tuple[int, ...]:
    shift %= len(melody)
    return melody[shift:] + melody[:shift]


def _lines(spec: TrackSpec, work_dir: Path) -> list[np.ndarray]:
    if spec.kind == "spoken":
        return [
            speak_line(line, spec.voice, spec.words_per_minute, spec.pitch, work_dir)
            for line in spec.lines
        ]
    return [
        sing_line(
            line,
            spec.voice,
            spec.words_per_minute,
            spec.pitch,
            _rotate(spec.melody, i),  # each line starts elsewhere in the tune
            spec.minor,
            work_dir,
        )
        for i, line in enumerate(spec.lines)
    ]


def _lead_notes(spec: TrackSpec, song: Song) -> list[Note]:
    """One note a beat through the melody, where the voice would be (instrumental) or in the
    breaks (a solo in a sung song)."""
    if spec.kind == "instrumental":
        spans = [(p.start_s, p.end_s) for p in song.placements]
    else:
        spans = [(s.start_s, s.end_s) for s in song.sections if s.name == "break"]
    beat_s = 60.0 / spec.bpm
    tune = semitones(spec.melody, spec.minor)
    notes = []
    for start_s, end_s in spans:
        for k in range(int((end_s - start_s) / beat_s)):
            t = start_s + k * beat_s
            notes.append(Note(t, t + beat_s, tune[k % len(tune)]))
    return notes


def render(spec: TrackSpec, work_dir: Path) -> RenderedTrack:
    """The mixed track, its stems and its true voiced spans; deterministic for a spec."""
    rng = np.random.default_rng(spec.seed)
    if spec.kind == "instrumental":
        lines = []
        durations = rng.uniform(*LEAD_PHRASE_S, size=4).tolist()
    else:
        lines = _lines(spec, work_dir)
        durations = [len(line) / RATE_HZ for line in lines]
    song = plan_song(durations, spec.length, spec.bpm, rng)
    n = round(song.duration_s * RATE_HZ)
    voice = None
    if lines:
        voice = np.zeros(n, np.float32)
        for p in song.placements:
            start = round(p.start_s * RATE_HZ)
            voice[start : start + len(lines[p.line])] = lines[p.line]
    band = accompaniment(
        song.duration_s,
        spec.key_hz,
        spec.bpm,
        seed=spec.seed + 1,
        sections=song.sections,
        minor=spec.minor,
        guitar=spec.guitar,
        lead=_lead_notes(spec, song) if spec.lead else (),
        sparse=spec.kind == "spoken",
    )
    regions = song.regions() if lines else []
    mixed = mix(voice, band[:n], regions, spec.vocal_db, spec.reverb_s, seed=spec.seed + 2)
    return RenderedTrack(spec, song, mixed, regions)

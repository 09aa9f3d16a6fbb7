"""Song form: sections, where each lyric line is sung, and so the true voiced spans.

Real records are not wall-to-wall voice: an instrumental intro, breaks between verses and an
outro leave about a third of a song without it, and a detector must find the edges. A short
song (about 35-50 s) is intro, verse, break, verse, outro; a full song (3-4 minutes) repeats
verse, chorus and break. Lines start on the eighth note after a short breath, sections start
on the beat; the intro, breaks and outro are then sized so that the voice-free share of the whole
song lands on a drawn target between ``VOICE_FREE_SHARE``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LENGTHS = ("short", "full")
VOICE_FREE_SHARE = (0.32, 0.38)  # drawn per song; every song stays within 0.30-0.40
FULL_TARGET_S = (185.0, 210.0)  # voiced sections are added until the song would reach this
MIN_BREATH_S = 0.25  # least gap between two lines
MIN_INSTRUMENTAL_BEATS = 4  # least intro or break: a bar
MIN_OUTRO_S = 2.0


@dataclass(frozen=True)
class Section:
    name: str  # intro, verse, chorus, break or outro
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Placement:
    line: int  # index into the track's lines
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Song:
    sections: tuple[Section, ...]
    placements: tuple[Placement, ...]  # in time order
    duration_s: float

    def regions(self) -> list[tuple[float, float]]:
        """The voiced spans in seconds, sorted and disjoint: one per placed line."""
        return [(p.start_s, p.end_s) for p in self.placements]

    def voice_free_share(self) -> float:
        voiced_s = sum(p.end_s - p.start_s for p in self.placements)
        return 1.0 - voiced_s / self.duration_s


def _vocal_sections(
    line_durations_s: Sequence[float], length: str, target_share: float, rng: np.random.Generator
) -> list[tuple[str, list[int]]]:
    """Which lines each voiced section sings, in order."""
    everything = list(range(len(line_durations_s)))
    if length == "short":
        return [("verse", everything), ("verse", everything)]
    hook = everything[-2:]
    chorus = hook * 2
    target_voiced_s = float(rng.uniform(*FULL_TARGET_S)) * (1.0 - target_share)
    sections: list[tuple[str, list[int]]] = []
    voiced_s = 0.0
    while voiced_s < target_voiced_s:
        name, lines = ("verse", everything) if len(sections) % 2 == 0 else ("chorus", chorus)
        sections.append((name, lines))
        voiced_s += sum(line_durations_s[i] for i in lines)
    return sections


def _layout(
    lines: Sequence[int], line_durations_s: Sequence[float], beat_s: float
) -> tuple[list[tuple[int, float, float]], float]:
    """Lines from the section's downbeat, each on the first eighth note after the previous
    line and a breath; returns (line, start, end) relative to the section start, and the
    section's length (whole beats)."""
    placed = []
    t = 0.0
    for line in lines:
        end = t + line_durations_s[line]
        placed.append((line, t, end))
        t = math.ceil((end + MIN_BREATH_S) / (beat_s / 2) - 1e-9) * (beat_s / 2)
    return placed, math.ceil(t / beat_s - 1e-9) * beat_s


def plan_song(
    line_durations_s: Sequence[float], length: str, bpm: float, rng: np.random.Generator
) -> Song:
    """Sections and line placements for lines of the given durations."""
    if length not in LENGTHS:
        raise ValueError(f"length must be one of {LENGTHS}, got {length!r}")
    if not line_durations_s:
        raise ValueError("a song needs at least one line")
    beat_s = 60.0 / bpm
    share = float(rng.uniform(*VOICE_FREE_SHARE))
    vocal = [
        (name, *_layout(lines, line_durations_s, beat_s))
        for name, lines in _vocal_sections(line_durations_s, length, share, rng)
    ]
    voiced_s = sum(end - start for _, placed, _ in vocal for _, start, end in placed)
    in_sections_s = sum(section_s for *_, section_s in vocal)
    # Instrumental time needed for the share, less what the voiced sections already leave.
    instrumental_s = voiced_s * share / (1.0 - share) - (in_sections_s - voiced_s)
    n_breaks = len(vocal) - 1 if length == "short" else (len(vocal) - 1) // 2
    weights = rng.uniform(0.7, 1.3, size=n_breaks + 2)  # intro, breaks, outro
    sizes_s = instrumental_s * weights / weights.sum()
    # A bar at least, or half of one when the lines are so short that bars would overshoot.
    least = MIN_INSTRUMENTAL_BEATS
    if (n_breaks + 1) * least * beat_s + MIN_OUTRO_S > instrumental_s:
        least //= 2
    beats = np.maximum(least, np.round(sizes_s[:-1] / beat_s)).astype(int)
    between_s = [float(b) * beat_s for b in beats]  # intro, then each break: on the beat grid
    outro_s = max(MIN_OUTRO_S, instrumental_s - sum(between_s))

    sections: list[Section] = []
    placements: list[Placement] = []
    t = 0.0

    def add(name: str, duration_s: float) -> None:
        nonlocal t
        sections.append(Section(name, t, t + duration_s))
        t += duration_s

    add("intro", between_s[0])
    breaks = iter(between_s[1:])
    for index, (name, placed, section_s) in enumerate(vocal):
        if index > 0 and (length == "short" or name == "verse"):
            add("break", next(breaks))
        placements += [Placement(line, t + start, t + end) for line, start, end in placed]
        add(name, section_s)
    add("outro", outro_s)
    return Song(tuple(sections), tuple(placements), t)

"""The espeak-ng voices: the melody markup, trimming, and a sung and a spoken line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.synth.audio import RATE_HZ
from pipeline.synth.voice import melody_ssml, semitones, sing_line, speak_line, trim

pytestmark = pytest.mark.timeout(60)


def test_scale_degrees_become_semitones_in_the_mode() -> None:
    assert semitones([0, 2, 4, 7, -1], minor=False) == [0, 4, 7, 12, -1]
    assert semitones([0, 2, 4, 7, -1], minor=True) == [0, 3, 7, 12, -2]


def test_melody_markup_holds_each_word_on_its_note_within_espeak_range() -> None:
    ssml = melody_ssml(["Tom", "&", "Jerry"], [0, 4, 40], pitch=40)
    assert '<prosody range="0%">' in ssml and "&amp;" in ssml
    percents = [int(p) for p in re.findall(r'pitch="([+-]\d+)%"', ssml)]
    assert percents == [0, 50, 148]  # 5 units a semitone; the last clamped at espeak's 99


def test_trim_keeps_first_to_last_sound() -> None:
    sound = np.concatenate([np.zeros(RATE_HZ), np.ones(RATE_HZ // 2), np.zeros(RATE_HZ)])
    trimmed = trim(sound.astype(np.float32))
    assert len(trimmed) == RATE_HZ // 2 and trimmed.min() == 1.0


def test_sung_line_is_slower_than_the_spoken_one(tmp_path: Path) -> None:
    text = "The river runs down to the sea."
    sung = sing_line(text, "en", 90, 40, (0, 2, 4, 2), False, tmp_path)
    spoken = speak_line(text, "en", 160, 40, tmp_path)
    for line in (sung, spoken):
        assert (
            np.abs(line[: RATE_HZ // 100]).max() > 0 and np.abs(line[-RATE_HZ // 100 :]).max() > 0
        )
    assert len(sung) > 1.5 * len(spoken)

"""The band: deterministic for a seed, switched by sections, full length on a 4-minute song."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.synth.accompaniment import Note, accompaniment
from pipeline.synth.audio import RATE_HZ, rms
from pipeline.synth.structure import Section

pytestmark = pytest.mark.timeout(60)

SECTIONS = (
    Section("intro", 0.0, 4.0),
    Section("verse", 4.0, 10.0),
    Section("chorus", 10.0, 16.0),
    Section("outro", 16.0, 20.0),
)


def test_same_seed_same_samples_other_seed_other_samples() -> None:
    a = accompaniment(20.0, 130.8, 96, seed=5, sections=SECTIONS, guitar=True)
    b = accompaniment(20.0, 130.8, 96, seed=5, sections=SECTIONS, guitar=True)
    c = accompaniment(20.0, 130.8, 96, seed=6, sections=SECTIONS, guitar=True)
    assert len(a) == 20 * RATE_HZ
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_layers_follow_sections_and_options() -> None:
    plain = accompaniment(20.0, 130.8, 96, seed=5, sections=SECTIONS)
    guitar = accompaniment(20.0, 130.8, 96, seed=5, sections=SECTIONS, guitar=True)
    chorus = slice(11 * RATE_HZ, 15 * RATE_HZ)
    verse = slice(5 * RATE_HZ, 9 * RATE_HZ)
    np.testing.assert_array_equal(plain[verse], guitar[verse])  # guitar only in the chorus
    assert rms(guitar[chorus] - plain[chorus]) > 0.01
    lead = accompaniment(20.0, 130.8, 96, seed=5, sections=SECTIONS, lead=[Note(5.0, 6.0, 4)])
    changed = np.flatnonzero(lead != plain) / RATE_HZ
    assert 5.0 <= changed.min() and changed.max() < 6.0
    sparse = accompaniment(20.0, 130.8, 96, seed=5, sections=SECTIONS, sparse=True)
    assert rms(sparse[verse]) < rms(plain[verse])  # a pad alone
    assert float(np.abs(plain[-10:]).max()) < 1e-3  # faded out


def test_four_minute_song_is_full_length_and_finite() -> None:
    sections = [
        Section("verse" if i % 2 else "chorus", 20.0 * i, 20.0 * (i + 1)) for i in range(12)
    ]
    band = accompaniment(240.0, 110.0, 120, seed=1, sections=sections, guitar=True)
    assert len(band) == round(240.0 * RATE_HZ)
    assert np.isfinite(band).all() and rms(band) > 0.01

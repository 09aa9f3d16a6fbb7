"""The voice level: what the mix sets is what a measurement of its stems finds."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.synth.accompaniment import accompaniment
from pipeline.synth.audio import RATE_HZ, level_db, span_mask
from pipeline.synth.mix import PEAK, measured_db, mix, reverb, room_impulse

pytestmark = pytest.mark.timeout(60)

VOICED = [(1.0, 2.5), (3.0, 4.2)]


def _stems() -> tuple[np.ndarray, np.ndarray]:
    """A band and a burst-y 'voice' that is silent outside ``VOICED``."""
    band = accompaniment(5.0, 146.8, 100, seed=3)
    rng = np.random.default_rng(0)
    voice = rng.standard_normal(len(band)).astype(np.float32) * 0.05
    voice *= span_mask(VOICED, len(band))
    return voice, band


@pytest.mark.parametrize("vocal_db", [-6.0, -2.5, 0.0, 3.0, 6.0])
@pytest.mark.parametrize("reverb_s", [0.0, 0.8])
def test_measured_level_is_the_requested_level(vocal_db: float, reverb_s: float) -> None:
    voice, band = _stems()
    result = mix(voice, band, VOICED, vocal_db, reverb_s=reverb_s, seed=1)
    assert measured_db(result, VOICED) == pytest.approx(vocal_db, abs=0.5)
    np.testing.assert_allclose(result.mixture, result.voice + result.accompaniment, atol=1e-6)
    assert float(np.abs(result.mixture).max()) == pytest.approx(PEAK, rel=1e-4)


def test_level_counts_only_the_voiced_spans() -> None:
    voice, band = _stems()
    louder_intro = band.copy()
    louder_intro[: RATE_HZ // 2] *= 10  # before the first voiced span
    assert level_db(voice, band, VOICED) == pytest.approx(level_db(voice, louder_intro, VOICED))


def test_reverb_is_linear_so_stems_can_be_treated_apart() -> None:
    voice, band = _stems()
    impulse = room_impulse(0.6, seed=2)
    together = reverb(voice + band, impulse)
    np.testing.assert_allclose(together, reverb(voice, impulse) + reverb(band, impulse), atol=1e-5)
    assert float(np.abs(reverb(voice, impulse) * ~span_mask(VOICED, len(voice))).max()) > 0


def test_instrumental_mix_is_the_band_alone() -> None:
    _, band = _stems()
    result = mix(None, band, [], None)
    assert not result.voice.any()
    np.testing.assert_allclose(result.mixture, result.accompaniment)

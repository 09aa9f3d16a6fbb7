"""The audio-only path's singing detector, on hand-set scores: no Whisper, no audio."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

from pipeline.config import ExtractConfig, SingingConfig
from pipeline.models.livi import LiviModel
from pipeline.models.singing_detector import DetectorConfig, SingingDetector
from pipeline.records import (
    AudioSegment,
    CatalogEntry,
    Rejected,
    SegmentedTrack,
    TrackEmbedding,
    TrackInfo,
)
from pipeline.stages.singing_detector import sung_windows
from pipeline.track_embedding import LiviAudioEmbedder
from pipeline.train.livi import livi_preset

pytestmark = pytest.mark.timeout(60)

WIDTH = 8


def _track(windows: int) -> SegmentedTrack:
    entry = CatalogEntry("song", "/audio/song.flac", 2)
    segments = tuple(
        AudioSegment(i, 30.0 * i, 30.0 * (i + 1), np.zeros(4, np.float32)) for i in range(windows)
    )
    return SegmentedTrack(TrackInfo(entry, 30.0 * windows, False, "", None), segments)


def _states(channel_0_means: list[float]) -> list[np.ndarray]:
    """One window per value, its channel 0 at that value over all 12 frames."""
    rng = np.random.default_rng(0)
    windows = []
    for mean in channel_0_means:
        states = rng.standard_normal((12, WIDTH)) * 0.1
        states[:, 0] = mean
        windows.append(states.astype(np.float16))
    return windows


def _detector() -> SingingDetector:
    """A probe that reads only the mean of channel 0: sung where it is positive."""
    detector = SingingDetector(DetectorConfig(input_dim=WIDTH, hidden_size=0))
    with torch.no_grad():
        detector.head.weight.zero_()
        detector.head.weight[0, 0] = 10.0
        detector.head.bias.zero_()
    return detector.eval()


def _embedder(detector: SingingDetector | None) -> LiviAudioEmbedder:
    torch.manual_seed(0)
    config = dataclasses.replace(livi_preset("small"), input_dim=WIDTH, text_dim=6)
    model = LiviModel(config).eval()
    return LiviAudioEmbedder(model, None, ExtractConfig(), WIDTH, detector)  # type: ignore[arg-type]


def test_windows_above_the_threshold_are_kept() -> None:
    config = SingingConfig(detector_threshold=0.5)
    assert sung_windows(_track(4), [0.1, 0.7, 0.5, 0.9], config) == [1, 3]
    with pytest.raises(ValueError, match="3 scores for 4 windows"):
        sung_windows(_track(4), [0.1, 0.7, 0.5], config)


def test_a_track_with_no_sung_window_is_rejected_with_its_scores() -> None:
    rejected = sung_windows(_track(3), np.array([0.02, 0.41, 0.1]), SingingConfig())
    assert isinstance(rejected, Rejected)
    assert (rejected.track_id, rejected.stage, rejected.reason) == ("song", "singing", "no_singing")
    assert "0-30 s 0.02; 30-60 s 0.41; 60-90 s 0.10" in rejected.detail
    assert "singing.detector=none" in rejected.detail


def test_the_embedder_embeds_only_the_sung_windows() -> None:
    states = _states([-1.0, 1.0, -1.0, 1.0])
    embedder = _embedder(_detector())
    result = embedder.embed_track_states(_track(4), states)
    assert isinstance(result, TrackEmbedding) and result.segment_count == 2
    expected = embedder.embed_states([states[1], states[3]])
    np.testing.assert_allclose(result.embedding, expected, atol=1e-6)
    every = _embedder(None).embed_track_states(_track(4), states)  # singing.detector=none
    assert isinstance(every, TrackEmbedding) and every.segment_count == 4


def test_the_embedder_rejects_a_track_the_detector_hears_no_singing_in() -> None:
    result = _embedder(_detector()).embed_track_states(_track(3), _states([-1.0, -0.5, -2.0]))
    assert isinstance(result, Rejected) and result.reason == "no_singing"
    scores = re.findall(r"\d+-\d+ s (\d\.\d\d)", result.detail)
    assert scores == ["0.00", "0.01", "0.00"]  # sigmoid(10 * -0.5) = 0.0067

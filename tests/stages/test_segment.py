from pathlib import Path

import numpy as np
import pytest

from pipeline.config import DecodeConfig, SegmentConfig
from pipeline.records import CatalogEntry, DecodedAudio, Rejected, SegmentedTrack
from pipeline.stages.decode import decode_audio
from pipeline.stages.segment import audio_from, segment_audio
from pipeline.synth.accompaniment import accompaniment

RATE = 16000


def _audio(samples: np.ndarray) -> DecodedAudio:
    return DecodedAudio(CatalogEntry("t", "mem", 2), samples.astype(np.float32), RATE, None, False)


@pytest.fixture(scope="module")
def speech(speech_wav: Path) -> np.ndarray:
    audio = decode_audio(CatalogEntry("t", str(speech_wav), 2), DecodeConfig())
    assert isinstance(audio, DecodedAudio)
    return audio.samples


def test_vocal_mode_finds_the_singing_and_pads_to_30_s(speech: np.ndarray) -> None:
    silence = np.zeros(20 * RATE, np.float32)
    track = np.concatenate([silence, speech, silence])
    result = segment_audio(_audio(track), SegmentConfig(mode="vocal", min_mean_vocalness=0.0))
    assert isinstance(result, SegmentedTrack)
    (segment,) = result.segments
    assert segment.samples.shape == (30 * RATE,)
    assert segment.end_s - segment.start_s == pytest.approx(30.0)
    speech_mid = 20 + len(speech) / RATE / 2
    assert segment.start_s < 20 and segment.end_s > 20 + len(speech) / RATE
    assert abs((segment.start_s + segment.end_s) / 2 - speech_mid) < 1.0
    assert 0.0 < result.info.mean_vocalness < 0.5


def test_distant_regions_become_separate_segments_and_long_ones_are_cut(speech: np.ndarray) -> None:
    gap = np.zeros(40 * RATE, np.float32)
    long_singing = np.tile(speech, int(np.ceil(45 * RATE / len(speech))))[: 45 * RATE]
    track = np.concatenate([speech, gap, long_singing])
    result = segment_audio(
        _audio(track), SegmentConfig(mode="vocal", min_mean_vocalness=0.0, merge_gap_s=3.0)
    )
    assert isinstance(result, SegmentedTrack)
    starts = [s.start_s for s in result.segments]
    assert len(starts) == 3  # the short region, then 45 s cut into 30 + 15 (zero-padded)
    last = result.segments[-1]
    assert np.all(last.samples[int((last.end_s - last.start_s) * RATE) + 1 :] == 0)
    assert [s.index for s in result.segments] == [0, 1, 2]


def test_fixed_mode_covers_the_whole_track_with_the_hop() -> None:
    track = np.random.default_rng(0).standard_normal(70 * RATE).astype(np.float32) * 0.1
    result = segment_audio(_audio(track), SegmentConfig(mode="fixed", hop_s=20.0))
    assert isinstance(result, SegmentedTrack)
    assert [(s.start_s, s.end_s) for s in result.segments] == [
        (0.0, 30.0),
        (20.0, 50.0),
        (40.0, 70.0),
    ]
    assert result.info.mean_vocalness is None


def test_music_without_voice_is_rejected() -> None:
    music = accompaniment(12.0, 146.8, 100, seed=1)[:: 44100 // 16000 + 1]
    result = segment_audio(_audio(music), SegmentConfig(mode="vocal"))
    assert isinstance(result, Rejected)
    assert result.reason in {"no_vocals", "low_vocalness"}


def test_mostly_instrumental_track_is_rejected_by_mean_vocalness(speech: np.ndarray) -> None:
    track = np.concatenate([speech, np.zeros(30 * RATE, np.float32)])
    result = segment_audio(_audio(track), SegmentConfig(mode="vocal", min_mean_vocalness=0.5))
    assert isinstance(result, Rejected) and result.reason == "low_vocalness"


def test_a_seek_reads_the_audio_from_its_offset_into_the_next_window() -> None:
    """``audio_from`` rebuilds 30 s from the windows: the rest of one, the start of the next,
    zeros past the track's end; never a window's padding."""
    rate = 100
    ramp = np.arange(7000, dtype=np.float32)  # 70 s at 100 Hz: each sample is its own index
    audio = DecodedAudio(CatalogEntry("t", "t.wav", 2), ramp, rate, 70.0, False)
    track = segment_audio(audio, SegmentConfig(mode="fixed", segment_s=30.0, hop_s=30.0))
    assert isinstance(track, SegmentedTrack) and len(track.segments) == 3
    seek = audio_from(track.segments, 21.0, 30.0, rate)
    assert (seek.start_s, seek.end_s) == (21.0, 51.0)
    np.testing.assert_array_equal(seek.samples, ramp[2100:5100])
    tail = audio_from(track.segments, 55.0, 30.0, rate)  # the last window holds 10 s of audio
    np.testing.assert_array_equal(tail.samples[:1500], ramp[5500:7000])
    assert not tail.samples[1500:].any()

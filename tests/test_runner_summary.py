"""The run summary's warning about tracks rejected for having no singing."""

from collections import Counter

from pipeline.config import ExtractConfig, SegmentConfig
from pipeline.runner import RunSummary, no_singing_warning


def _summary(tracks: int, **rejected: int) -> RunSummary:
    return RunSummary(tracks=tracks, ok=tracks - sum(rejected.values()), rejected=Counter(rejected))


def test_no_warning_at_ten_percent_or_less() -> None:
    assert no_singing_warning(_summary(10, no_singing=1, file_not_found=5), ExtractConfig()) is None
    assert no_singing_warning(_summary(0), ExtractConfig()) is None


def test_warning_names_the_share_and_the_setting() -> None:
    warning = no_singing_warning(_summary(10, no_singing=2), ExtractConfig())
    assert warning is not None and "2 of 10 tracks (20%)" in warning
    assert "singing.keep_unsung_tracks=true" in warning


def test_livi_rule_warning_points_at_the_default() -> None:
    livi = ExtractConfig(segment=SegmentConfig(mode="vocal"))
    warning = no_singing_warning(_summary(12, low_vocalness=9, no_vocals=1), livi)
    assert warning is not None and "10 of 12 tracks" in warning
    assert "segment.min_mean_vocalness" in warning and "segment.mode=vocal" in warning

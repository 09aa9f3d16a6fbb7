"""The audio-only path's singing judgement: which windows the detector calls sung.

Without a transcript, Whisper's judge (``stages/singing.py``) cannot run; the detector
(``pipeline/train/singing.py``) predicts its verdict from each window's encoder states. A window
is sung when its probability exceeds ``singing.detector_threshold``; a track with none is
rejected ``no_singing``, with every window's probability in the detail, as the full extraction
rejects one its judge hears no lyrics in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.config import SingingConfig
from pipeline.records import Rejected, SegmentedTrack
from pipeline.stages.singing import STAGE


def sung_windows(
    track: SegmentedTrack, scores: Sequence[float] | np.ndarray, config: SingingConfig
) -> list[int] | Rejected:
    """The indices of the windows whose probability of singing exceeds the threshold, or the
    track rejected ``no_singing`` when there is none."""
    if len(scores) != len(track.segments):
        raise ValueError(f"{len(scores)} scores for {len(track.segments)} windows")
    kept = [i for i, p in enumerate(scores) if p > config.detector_threshold]
    if kept or not track.segments:
        return kept
    return Rejected(
        track.info.entry.track_id, STAGE, "no_singing", no_singing_scores(track, scores, config)
    )


def no_singing_scores(
    track: SegmentedTrack, scores: Sequence[float] | np.ndarray, config: SingingConfig
) -> str:
    """The evidence for rejecting a track: each window's probability of singing."""
    windows = "; ".join(
        f"{s.start_s:.0f}-{s.end_s:.0f} s {p:.2f}"
        for s, p in zip(track.segments, scores, strict=True)
    )
    return (
        f"the singing detector ({config.detector}) calls no window sung in "
        f"{len(track.segments)} window(s), probability of singing: {windows} (sung above "
        f"singing.detector_threshold {config.detector_threshold}); singing.detector=none "
        "(--set, or in the --config file) embeds every window"
    )

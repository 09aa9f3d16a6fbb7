"""``singing.keep_unsung_states``: the windows judged unsung of a sung track get shard samples
marked ``detector_only``, which the LIVI and WEALY readers leave out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.io.output_dir import OutputDir
from pipeline.io.webdataset import iter_samples, list_shards
from pipeline.partition import write_partition
from pipeline.records import CatalogEntry, SegmentFeatures, TrackFeatures, TrackInfo, Transcript
from pipeline.train.data import index_tracks

pytestmark = pytest.mark.timeout(60)


def _segment(index: int, singing: str) -> SegmentFeatures:
    transcript = Transcript((), (1, 2), "la", "en", 0.9, -0.5, 0.1, 1.0, 0.0)
    sung = singing == "sung"
    return SegmentFeatures(
        index=index,
        start_s=30.0 * index,
        end_s=30.0 * (index + 1),
        encoder_states=np.full((6, 4), index, np.float16),
        decoder_states=np.ones((2 if sung else 0, 4), np.float16),
        transcript=transcript,
        token_agreement=None,
        clean_text="la",
        text_embedding=np.ones(3, np.float32) if sung else None,
        singing=singing,
    )


@pytest.mark.parametrize("keep", [False, True])
def test_unsung_windows_of_a_sung_track_are_kept_for_the_detector(
    tmp_path: Path, keep: bool
) -> None:
    entry = CatalogEntry("song", "/audio/song.flac", 2, work_id="w")
    info = TrackInfo(entry, 60.0, False, "", None)
    track = TrackFeatures(info, (_segment(0, "sung"), _segment(1, "few_words")), None, keep)
    out = OutputDir(tmp_path)
    write_partition(0, [entry], [track], out)
    samples = list(iter_samples(list_shards(tmp_path)[0]))
    assert [s.meta["singing"] for s in samples] == (["sung", "few_words"] if keep else ["sung"])
    assert [s.meta.get("detector_only", False) for s in samples] == [False, True][: len(samples)]
    assert float(samples[-1].arrays["encoder"][0, 0]) == len(samples) - 1
    (indexed,) = index_tracks(list_shards(tmp_path))  # WEALY: the sung window's states only
    assert indexed.length == 2 and len(indexed.decoder) == 1

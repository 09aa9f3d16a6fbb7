"""Which compression-ratio threshold keeps sung lyrics? Word recall on the example catalog.

Segments every example track once, encodes once, then transcribes with each threshold and
counts fallbacks, median average log-probability and recall of the sung words.

    .venv/bin/python -m benchmarks.fallback_threshold
"""

from __future__ import annotations

import re
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from benchmarks._common import print_table, write_json
from pipeline.config import ExtractConfig
from pipeline.io.catalog import read_catalog
from pipeline.models.whisper_runtime import load_whisper
from pipeline.records import SegmentedTrack
from pipeline.stages.encode import encode, log_mel
from pipeline.stages.transcribe import transcribe
from pipeline.synth.example import TRACKS, make_example
from pipeline.track import prepare_track

THRESHOLDS = (1.35, 2.4, 3.0, None)


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def main() -> None:
    config = ExtractConfig()
    runtime = load_whisper(config.whisper)
    lyrics = {t.track_id: t.lyrics for t in TRACKS}
    encoded = []
    with tempfile.TemporaryDirectory() as tmp:
        for entry in read_catalog(make_example(Path(tmp))):
            track = prepare_track(entry, config)
            if isinstance(track, SegmentedTrack):
                states = encode(log_mel(list(track.segments), runtime), runtime)
                encoded.extend((entry.track_id, s) for s in states)
    rows = []
    for threshold in THRESHOLDS:
        whisper = replace(config.whisper, compression_ratio_threshold=threshold)
        results = [(tid, transcribe(states, runtime, whisper)) for tid, states in encoded]
        recall = [
            len(_words(t.text) & _words(lyrics[tid])) / len(_words(lyrics[tid]))
            for tid, t in results
        ]
        rows.append(
            {
                "threshold": threshold,
                "segments": len(results),
                "fallbacks": sum(t.temperature > 0 for _, t in results),
                "median_avg_logprob": round(
                    statistics.median(t.avg_logprob for _, t in results), 2
                ),
                "median_word_recall": round(statistics.median(recall), 3),
                "mean_word_recall": round(statistics.mean(recall), 3),
            }
        )
    print_table(rows)
    print(f"json: {write_json('fallback_threshold', {'rows': rows})}")


if __name__ == "__main__":
    main()

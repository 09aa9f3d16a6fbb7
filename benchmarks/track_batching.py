"""Does batching the segments of several tracks in one Whisper task pay on this machine?

Generated ~1 minute songs (``pipeline make-bench``: the voice at -6..+6 dB under a full band,
intro and breaks; 2-3 windows each, so one track alone leaves a batch of 8 part empty) are
decoded, separated and segmented once; then ``extract_tracks`` runs on groups of 1 (what a CPU
worker does by default), 2, 4 and 8 tracks, interleaved over ``--repeats`` passes in one
process. It prints the median seconds per track of each group size, the ratio to one track
per task, and how many tracks came out different from their extraction alone (none should).

    .venv/bin/python -m benchmarks.track_batching --workdir /tmp/track-batching
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

from benchmarks._common import PIPELINE, print_table, write_json
from pipeline.config import ExtractConfig
from pipeline.io.catalog import read_catalog
from pipeline.models.whisper_runtime import load_whisper
from pipeline.records import Rejected, SegmentedTrack, TrackFeatures
from pipeline.stages.embed_text import text_dimension
from pipeline.track import extract_tracks, prepare_track


def same_features(a: TrackFeatures | Rejected, b: TrackFeatures | Rejected) -> bool:
    if not (isinstance(a, TrackFeatures) and isinstance(b, TrackFeatures)):
        return a == b
    return len(a.segments) == len(b.segments) and all(
        x.transcript == y.transcript
        and x.singing == y.singing
        and np.array_equal(x.encoder_states, y.encoder_states)
        and np.array_equal(x.decoder_states, y.decoder_states)
        for x, y in zip(a.segments, b.segments, strict=True)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("track-batching"))
    parser.add_argument("--songs", type=int, default=8)
    parser.add_argument("--group-sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    catalog = args.workdir / "bench" / "catalog.csv"
    if not catalog.is_file():
        make_bench = [PIPELINE, "make-bench", "--output", str(catalog.parent)]
        make_bench += ["--works", str(args.songs), "--versions-per-work", "1"]
        make_bench += ["--distractors", "0", "--instrumentals", "0", "--spoken", "0"]
        subprocess.run(make_bench, check=True, stdout=subprocess.DEVNULL)
    config = ExtractConfig()
    threads = os.cpu_count() or 1
    tracks = [
        t
        for e in read_catalog(catalog)
        if isinstance(t := prepare_track(e, config), SegmentedTrack)
    ]
    load_whisper(config.whisper, threads)  # loads before any timing
    text_dimension()
    seconds: dict[int, list[float]] = {size: [] for size in args.group_sizes}
    outputs: dict[int, list[TrackFeatures | Rejected]] = {}
    for repeat in range(args.repeats):
        order = args.group_sizes if repeat % 2 == 0 else args.group_sizes[::-1]
        for size in order:  # interleaved: the machine's noise hits every size alike
            start = time.perf_counter()
            outputs[size] = [
                f
                for first in range(0, len(tracks), size)
                for f in extract_tracks(tracks[first : first + size], config, threads)
            ]
            seconds[size].append(time.perf_counter() - start)
    alone = statistics.median(seconds[args.group_sizes[0]])
    reference = outputs[args.group_sizes[0]]
    rows = [
        {
            "tracks_per_task": size,
            "s_per_track": round(statistics.median(seconds[size]) / len(tracks), 3),
            "ratio_to_first": round(statistics.median(seconds[size]) / alone, 3),
            "tracks_differing": sum(
                not same_features(a, b) for a, b in zip(reference, outputs[size], strict=True)
            ),
        }
        for size in args.group_sizes
    ]
    windows = sum(len(t.segments) for t in tracks)
    print(f"{len(tracks)} songs, {windows} windows, {threads} threads, {args.repeats} repeats")
    print_table(rows)
    payload = {"songs": len(tracks), "windows": windows, "threads": threads, "rows": rows}
    print(f"json: {write_json('track_batching', payload | {'seconds': seconds})}")


if __name__ == "__main__":
    main()

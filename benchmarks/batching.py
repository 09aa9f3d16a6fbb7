"""Whisper batching on this device: seconds per track for each ``whisper.batch_size`` and
``run.tracks_per_task`` through ``extract_tracks``, interleaved, and how many tracks' features
(``tracks_differing``) or segments' tokens differ from the first combination's
(docs/benchmarks.md#batching).

    .venv/bin/python -m benchmarks.batching --workdir /tmp/batching --tracks-per-task 1 2 4 8
    .venv/bin/python -m benchmarks.batching --workdir /tmp/batching --length full --songs 4 \\
        --batch-sizes 1 4 8 --tracks-per-task 1
    .venv/bin/python -m benchmarks.batching --device cuda --batch-sizes 8 32 --tracks-per-task 1 8
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from itertools import product

import numpy as np

from benchmarks._common import bench_parser, interleaved, print_table, sung_bench, write_json
from pipeline.config import ExtractConfig
from pipeline.io.catalog import read_catalog
from pipeline.models.whisper_runtime import load_whisper
from pipeline.records import Rejected, SegmentedTrack, TrackFeatures
from pipeline.stages.embed_text import text_dimension
from pipeline.track import extract_tracks, prepare_track


def differences(a: TrackFeatures | Rejected, b: TrackFeatures | Rejected) -> tuple[bool, int]:
    """(whether anything differs, how many segments have other tokens)."""
    if not (isinstance(a, TrackFeatures) and isinstance(b, TrackFeatures)):
        return a != b, int(a != b)
    if len(a.segments) != len(b.segments):
        return True, max(len(a.segments), len(b.segments))
    pairs = list(zip(a.segments, b.segments, strict=True))
    same = all(
        x.transcript == y.transcript
        and x.singing == y.singing
        and np.array_equal(x.encoder_states, y.encoder_states)
        and np.array_equal(x.decoder_states, y.decoder_states)
        for x, y in pairs
    )
    return not same, sum(x.transcript.tokens != y.transcript.tokens for x, y in pairs)


def main(argv: list[str] | None = None) -> None:
    args = bench_parser(__doc__, "batching")
    args.add_argument("--songs", type=int, default=8)
    args.add_argument("--length", choices=["short", "full"], default="short")
    args.add_argument("--batch-sizes", type=int, nargs="+", default=[8], help="whisper.batch_size")
    args.add_argument("--tracks-per-task", type=int, nargs="+", default=[1, 8])
    args.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args.add_argument("--repeats", type=int, default=2)
    a = args.parse_args(argv)
    catalog = sung_bench(a.workdir / f"bench-{a.length}", a.songs, a.length)
    base = ExtractConfig()
    threads = os.cpu_count() or 1
    tracks = [
        t for e in read_catalog(catalog) if isinstance(t := prepare_track(e, base), SegmentedTrack)
    ]
    load_whisper(dataclasses.replace(base.whisper, device=a.device), threads)  # before timing
    text_dimension()

    def variant(batch_size: int, per_task: int) -> Callable[[], list[TrackFeatures | Rejected]]:
        whisper = dataclasses.replace(base.whisper, device=a.device, batch_size=batch_size)
        config = dataclasses.replace(base, whisper=whisper)
        return lambda: [
            f
            for first in range(0, len(tracks), per_task)
            for f in extract_tracks(tracks[first : first + per_task], config, threads)
        ]

    combos = list(product(a.batch_sizes, a.tracks_per_task))
    seconds, outputs = interleaved({c: variant(*c) for c in combos}, a.repeats)
    rows = []
    for combo in combos:
        diffs = [differences(*p) for p in zip(outputs[combos[0]], outputs[combo], strict=True)]
        row = {"batch_size": combo[0], "tracks_per_task": combo[1]}
        row["s_per_track"] = round(seconds[combo] / len(tracks), 3)
        row["ratio_to_first"] = round(seconds[combo] / seconds[combos[0]], 3)
        row["tracks_differing"] = sum(differing for differing, _ in diffs)
        rows.append(row | {"segments_other_tokens": sum(tokens for _, tokens in diffs)})
    windows = sum(len(t.segments) for t in tracks)
    print(f"{len(tracks)} {a.length} songs, {windows} windows, {a.device}, {threads} threads")
    print_table(rows)
    payload = {"songs": len(tracks), "windows": windows, "device": a.device, "rows": rows}
    print(f"json: {write_json(f'batching-{a.device}', payload)}")


if __name__ == "__main__":
    main()

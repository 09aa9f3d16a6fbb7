"""Does batched greedy decoding pay, and does it change anything? Measured side by side.

Full-length generated songs (``pipeline make-bench --length full``: the voice at -6..+6 dB
under a full band, intro, breaks and outro) are segmented and encoded once; then every
segment is transcribed one call per segment (``transcribe``) and in batches
(``transcribe_batch``: one ``detect_language`` and one greedy ``generate`` per batch, then
the fallback temperatures of the failing segments sampled together), interleaved over
``--repeats`` passes (a segment alone still samples its fallback temperatures together). It
prints the median seconds per segment of each way, their ratio, how many segments got other
tokens and the largest change of a score (sampled scores may move in the last float digits).

    .venv/bin/python -m benchmarks.batched_decoding --workdir /tmp/batched-bench
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
from pipeline.config import ExtractConfig, WhisperConfig
from pipeline.io.catalog import read_catalog
from pipeline.models.whisper_runtime import WhisperRuntime, load_whisper
from pipeline.records import SegmentedTrack, Transcript
from pipeline.stages.encode import encode, log_mel
from pipeline.stages.transcribe import transcribe, transcribe_batch
from pipeline.track import prepare_track


def encoded_segments(catalog: Path, config: ExtractConfig, runtime: WhisperRuntime) -> np.ndarray:
    """(N, L, d) encoder states of every fixed 30 s window of the catalog's songs."""
    segments = []
    for entry in read_catalog(catalog):
        track = prepare_track(entry, config)
        if isinstance(track, SegmentedTrack):
            segments += list(track.segments)
    return np.concatenate(
        [encode(log_mel(segments[i : i + 8], runtime), runtime) for i in range(0, len(segments), 8)]
    )


def _timed_pass(
    states: np.ndarray, runtime: WhisperRuntime, config: WhisperConfig, batch_size: int
) -> tuple[float, list[Transcript]]:
    start = time.perf_counter()
    if batch_size == 1:
        out = [transcribe(s, runtime, config) for s in states]
    else:
        out = [
            t
            for i in range(0, len(states), batch_size)
            for t in transcribe_batch(states[i : i + batch_size], runtime, config)
        ]
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("batched-bench"))
    parser.add_argument("--songs", type=int, default=4, help="full-length songs")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    catalog = args.workdir / "bench" / "catalog.csv"
    if not catalog.is_file():
        subprocess.run(
            [
                *(PIPELINE, "make-bench", "--output", str(catalog.parent), "--length", "full"),
                *("--works", str(args.songs), "--versions-per-work", "1", "--distractors", "0"),
                *("--instrumentals", "0", "--spoken", "0"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    config = ExtractConfig()
    runtime = load_whisper(config.whisper, os.cpu_count() or 0)
    states = encoded_segments(catalog, config, runtime)
    sizes = [1, *args.batch_sizes]
    seconds: dict[int, list[float]] = {size: [] for size in sizes}
    outputs: dict[int, list[Transcript]] = {}
    for _ in range(args.repeats):
        for size in sizes:  # interleaved: the machine's noise hits every size alike
            wall_s, outputs[size] = _timed_pass(states, runtime, config.whisper, size)
            seconds[size].append(wall_s)
    alone = statistics.median(seconds[1])
    fallbacks = sum(t.temperature > 0 for t in outputs[1])
    rows = [
        {
            "batch_size": size,
            "s_per_segment": round(statistics.median(seconds[size]) / len(states), 3),
            "ratio_to_batch_1": round(statistics.median(seconds[size]) / alone, 3),
            "differing_tokens": sum(
                a.tokens != b.tokens for a, b in zip(outputs[1], outputs[size], strict=True)
            ),
            "max_logprob_change": max(
                abs(a.avg_logprob - b.avg_logprob)
                for a, b in zip(outputs[1], outputs[size], strict=True)
            ),
        }
        for size in sizes
    ]
    print(f"{len(states)} segments of {args.songs} full songs, {fallbacks} sampled fallbacks")
    print_table(rows)
    payload = {
        "segments": len(states),
        "songs": args.songs,
        "fallbacks": fallbacks,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "seconds": {str(k): v for k, v in seconds.items()},
        "rows": rows,
    }
    print(f"json: {write_json('batched_decoding', payload)}")


if __name__ == "__main__":
    main()

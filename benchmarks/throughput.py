"""Full-length songs: our extraction against what a user writes in ten lines, side by side.

Each method in its own process on generated 3-4 minute songs, interleaved ``--repeats`` times;
process start and model loading count. ``A``, ``A2``: faster-whisper's ``transcribe`` loop and
its ``BatchedInferencePipeline``, plus the pipeline's text encoder; ``B``: ``run extract``;
``B0``: B with the transcription before the lyrics work (``BEFORE``); ``Bs``: B with the
sung windows seeking on fresh audio instead of continuing on their own encoder states
(``SEEK``); ``C``: ``run embed
--audio`` with a LIVI head trained one epoch on B's shards; ``C2``: that head as ``run extract
--livi-run``. ``--times K`` then runs B on the songs listed K times: each process's peak RSS
(docs/benchmarks.md).

    .venv/bin/python -m benchmarks.throughput --workdir /tmp/throughput-bench --songs 6 --repeats 2
    .venv/bin/python -m benchmarks.throughput --workdir /tmp/memory-bench --songs 20 --methods B \\
        --repeats 1 --times 10
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from benchmarks._common import (
    PIPELINE,
    TRANSCRIPTION_BEFORE,
    bench_parser,
    extract_command,
    faster_whisper_loop,
    print_table,
    run_measured,
    run_quiet,
    set_args,
    sung_bench,
    write_csv,
    write_json,
)
from pipeline.synth.truth import read_truth

LOOPS = ("A", "A2")
BEFORE = set_args(*TRANSCRIPTION_BEFORE)  # B0
SEEK = set_args("whisper.dense_seek=true")  # Bs
EXTRACT_ARGS = {"B": (), "B0": BEFORE, "Bs": SEEK}
RATIOS = ("B/A", "B/A2", "Bs/A", "Bs/B", "B0/A", "B0/A2", "B/B0", "A/C", "A2/C", "A/C2", "A2/C2")


def user_loop(method: str, catalog: Path, batch_size: int, result: Path) -> None:
    """A or A2 in this process: transcribe each file, embed its text; per-track seconds."""
    from pipeline.config import TextEmbedConfig
    from pipeline.io.catalog import read_catalog
    from pipeline.stages.embed_text import clean_transcript, embed_text

    transcript = faster_whisper_loop(method, batch_size)
    seconds = []
    for entry in read_catalog(catalog):
        start = time.perf_counter()
        embed_text(clean_transcript(transcript(entry.audio_path)), TextEmbedConfig())
        seconds.append(time.perf_counter() - start)
    result.write_text(json.dumps(seconds))


def _command(method: str, catalog: Path, work: Path, batch_size: int) -> list[str]:
    if method in LOOPS:
        loop = [sys.executable, "-m", "benchmarks.throughput", "--loop", method]
        loop += ["--catalog", str(catalog), "--batch-size", str(batch_size)]
        return [*loop, "--loop-result", str(work / f"{method}.json")]
    if method in EXTRACT_ARGS:
        return extract_command(catalog, work / method, *EXTRACT_ARGS[method])
    if method == "C2":
        return extract_command(catalog, work / "C2", "--livi-run", str(work / "livi-run"))
    embed = [PIPELINE, "run", "embed", "--model", str(work / "livi-run"), "--audio", str(catalog)]
    return [*embed, "--output", str(work / "C.parquet")]


def _prepare(catalog: Path, work: Path) -> None:
    """A first extraction and a LIVI head trained on it, so that C has a run to load."""
    if not (work / "livi-run" / "last.pt").is_file():
        run_quiet(extract_command(catalog, work / "first-B"))
        train = [PIPELINE, "run", "train", "livi", "--shards", str(work / "first-B")]
        run_quiet([*train, "--output", str(work / "livi-run"), "--epochs", "1"])


def repeated_catalog(catalog: Path, times: int, target: Path) -> Path:
    """``catalog``'s rows ``times`` over, track ids suffixed ``~k``, paths made absolute."""
    with open(catalog, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["audio_path"] = str((catalog.parent / row["audio_path"]).resolve())
    copies = [row | {"track_id": f"{row['track_id']}~{k}"} for k in range(times) for row in rows]
    return write_csv(target, copies)


def memory_row(catalog: Path, wall_s: float, peaks: dict[str, float]) -> dict[str, Any]:
    """A B run's worker and driver peaks."""
    workers = {name: mb for name, mb in peaks.items() if "dask worker" in name}
    driver = max(mb for name, mb in peaks.items() if name not in workers)
    return {
        "catalog": catalog.name,
        "tracks": len(catalog.read_text(encoding="utf-8").splitlines()) - 1,
        "wall_s": round(wall_s, 1),
        "worker_peaks_mb": sorted(round(mb) for mb in workers.values()),
        "largest_worker_mb": round(max(workers.values())),
        "driver_mb": round(driver),
    }


def _windows_per_sung_minute(features: Path, catalog: Path) -> float:
    windows = pq.read_table(features / "segments").num_rows
    sung_s = sum(end - start for t in read_truth(catalog).values() for start, end in t.regions)
    return windows / (sung_s / 60)


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__, "throughput-bench")
    parser.add_argument("--songs", type=int, default=6, help="full-length generated songs")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8, help="A2's batch size")
    parser.add_argument("--methods", nargs="+", default=["A", "A2", "B", "C", "C2"])
    parser.add_argument("--times", type=int, help="then B's memory on the songs listed K times")
    parser.add_argument("--loop", choices=LOOPS, help=argparse.SUPPRESS)  # one run of A or A2
    parser.add_argument("--catalog", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--loop-result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.times and "B" not in args.methods:
        parser.error("--times measures B: add B to --methods")
    if args.loop:
        user_loop(args.loop, args.catalog, args.batch_size, args.loop_result)
        return
    catalog = sung_bench(args.workdir / "bench", args.songs)
    truth = read_truth(catalog)
    audio_s = sum(t.duration_s for t in truth.values())
    work = args.workdir / "runs"
    work.mkdir(parents=True, exist_ok=True)
    if {"C", "C2"} & set(args.methods):
        _prepare(catalog, work)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.methods}
    for repeat in range(args.repeats):
        for method in args.methods:  # interleaved: the machine's noise hits every method alike
            for folder in (*EXTRACT_ARGS, "C2"):  # each run starts from nothing
                shutil.rmtree(work / folder, ignore_errors=True)
            (work / "C.parquet").unlink(missing_ok=True)
            wall_s, peaks = run_measured(_command(method, catalog, work, args.batch_size))
            run: dict[str, Any] = {"wall_s": wall_s, "peak_rss_mb": max(peaks.values())}
            if method in LOOPS:
                run["track_s"] = json.loads((work / f"{method}.json").read_text())
            if method == "B":
                run["windows_per_sung_min"] = _windows_per_sung_minute(work / "B", catalog)
                run["peaks"] = peaks
            runs[method].append(run)
            print(f"repeat {repeat + 1}: {method} {wall_s:.1f} s, {run['peak_rss_mb']:.0f} MB")
    rows = [_row(method, r, audio_s, len(truth)) for method, r in runs.items()]
    ratios = _ratios(runs)
    print(f"\n{len(truth)} songs, {audio_s:.0f} s of audio, {os.cpu_count()} CPUs")
    print_table(rows)
    print_table([ratios])
    payload = {"songs": len(truth), "audio_s": audio_s, "runs": runs, "rows": rows}
    if args.times:  # B's last run is the small catalog; its output is still there
        large = repeated_catalog(catalog, args.times, args.workdir / f"catalog-x{args.times}.csv")
        shutil.rmtree(work / "B-large", ignore_errors=True)
        large_run = run_measured(extract_command(large, work / "B-large"))
        last = runs["B"][-1]
        memory = [
            memory_row(catalog, last["wall_s"], last["peaks"]),
            memory_row(large, *large_run),
        ]
        ratio = round(memory[1]["largest_worker_mb"] / memory[0]["largest_worker_mb"], 3)
        print_table(memory)
        print(f"largest worker peak, large / small catalog: {ratio}")
        payload |= {"memory": memory, "worker_peak_ratio": ratio}
    print(f"json: {write_json('throughput', payload | {'ratios': ratios})}")


def _row(method: str, runs: list[dict[str, Any]], audio_s: float, tracks: int) -> dict[str, Any]:
    wall = statistics.median(r["wall_s"] for r in runs)
    row: dict[str, Any] = {
        "method": method,
        "wall_s": round(wall, 1),
        "audio_s_per_wall_s": round(audio_s / wall, 2),
        "s_per_track": round(wall / tracks, 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs)),
    }
    if "track_s" in runs[0]:  # in-process per-track times: model loading excluded
        per_track = [s for r in runs for s in r["track_s"]]
        row["track_s_median"] = round(statistics.median(per_track), 1)
        row["track_s_mean"] = round(statistics.mean(per_track), 1)
    if "windows_per_sung_min" in runs[0]:
        row["windows_per_sung_min"] = round(runs[0]["windows_per_sung_min"], 2)
    return row


def _ratios(runs: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Each ratio per repeat (both sides from the same pass), then the median."""
    ratios = {}
    for pair in RATIOS:
        top, bottom = pair.split("/")
        if top in runs and bottom in runs:
            pairs = zip(runs[top], runs[bottom], strict=True)
            values = [t["wall_s"] / b["wall_s"] for t, b in pairs]
            ratios[pair] = round(statistics.median(values), 3)
    return ratios


if __name__ == "__main__":
    main()

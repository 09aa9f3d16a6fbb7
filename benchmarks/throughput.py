"""Full-length songs: our extraction against what a user writes in ten lines, side by side.

Data: generated 3-4 minute songs (``pipeline make-bench --length full``: the voice at -6..+6 dB
under a full band, intro, breaks and outro, true vocal regions in the catalog). Methods, the
same Whisper model and compute type, each in its own process, interleaved ``--repeats`` times:

- ``A``: a loop over files with faster-whisper ``WhisperModel.transcribe`` (greedy, beam 1)
  and the pipeline's text encoder on the whole transcript;
- ``A2``: the same loop with faster-whisper's ``BatchedInferencePipeline`` (``--batch-size``,
  its default Silero VAD, greedy);
- ``B``: ``pipeline run extract``, every feature (encoder states, transcript, singing
  judgement, decoder states, text embedding), on its default LocalCluster;
- ``B0``: the same with the transcription as it was before timestamps and continuation
  (``BEFORE``): what the denser transcripts cost;
- ``C``: ``pipeline run embed --audio`` with a LIVI head (paper sizes, trained one epoch on
  B's shards: its speed does not depend on how well it is trained), in one process;
- ``C2``: the same head as a Dask job over the catalog, ``pipeline run extract --livi-run``
  (resumable, partitioned, on the default LocalCluster like B).

Prints audio seconds per wall second, seconds per track, peak RSS of the largest process of
each method, encoder windows per minute of singing, and the ratios B/A, B/A2, A/C, A2/C as
medians over the repeats; writes JSON. Process start and model loading count: they are what a
user waits for.

Then the cost of the singing judgement (``--judging-cost``): B hears every window, so Whisper
also runs on the intros, breaks and outros it then drops. In this process, on one thread, each
song's ``extract_track`` is timed, then the encoder and transcription of the windows it judged
unsung alone: the seconds a perfect singing detector would have saved.

    .venv/bin/python -m benchmarks.throughput --workdir /tmp/throughput-bench \
        --real-cache /tmp/real-cache
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from benchmarks._common import (
    PIPELINE,
    extract_command,
    faster_whisper_loop,
    full_song_bench,
    print_table,
    run_measured,
    write_json,
)
from pipeline.synth.truth import read_truth

LOOPS = ("A", "A2")
# B0: the transcription as it was before the lyrics work (one decoding per window without
# timestamps, a language per window, the fallback for every window under the thresholds).
BEFORE = ("--set", "whisper.continue_rounds=0", "--set", "whisper.keep_window_language=0.0")
BEFORE += ("--set", "whisper.resample_sung=true")


def judging_cost(catalog: Path) -> list[dict[str, Any]]:
    """Per song: seconds of ``extract_track`` and of Whisper (encoder and transcription) on the
    windows the judgement dropped, one thread, the model loaded once beforehand."""
    from pipeline.config import ExtractConfig
    from pipeline.io.catalog import read_catalog
    from pipeline.models.whisper_runtime import load_whisper
    from pipeline.records import Rejected
    from pipeline.stages.encode import encode, log_mel
    from pipeline.stages.transcribe import transcribe_batch
    from pipeline.track import extract_track, prepare_track

    config = ExtractConfig()
    runtime = load_whisper(config.whisper, threads=1)
    rows = []
    for entry in read_catalog(catalog):
        track = prepare_track(entry, config, threads=1)
        if isinstance(track, Rejected):
            raise RuntimeError(f"{entry.track_id}: {track.reason} ({track.detail})")
        start = time.perf_counter()
        features = extract_track(track, config, threads=1)
        track_s = time.perf_counter() - start
        if isinstance(features, Rejected):  # no sung window: the whole track was judging
            unsung = list(track.segments)
        else:
            unsung = [
                s for s, f in zip(track.segments, features.segments, strict=True) if not f.sung
            ]
        start = time.perf_counter()
        for first in range(0, len(unsung), config.whisper.batch_size):
            batch = unsung[first : first + config.whisper.batch_size]
            transcribe_batch(encode(log_mel(batch, runtime), runtime), runtime, config.whisper)
        unsung_s = time.perf_counter() - start
        rows.append(
            {
                "track_id": entry.track_id,
                "windows": len(track.segments),
                "unsung_windows": len(unsung),
                "extract_track_s": round(track_s, 2),
                "unsung_whisper_s": round(unsung_s, 2),
                "share": round(unsung_s / track_s, 3),
            }
        )
        print(f"judging cost: {rows[-1]}", flush=True)
    return rows


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


def _command(method: str, catalog: Path, work: Path, args: argparse.Namespace) -> list[str]:
    if method in LOOPS:
        loop = [sys.executable, "-m", "benchmarks.throughput", "--loop", method]
        loop += ["--catalog", str(catalog), "--batch-size", str(args.batch_size)]
        return [*loop, "--loop-result", str(work / f"{method}.json")]
    if method == "B":
        return extract_command(catalog, work / "B")
    if method == "B0":
        return extract_command(catalog, work / "B0", *BEFORE)
    if method == "C2":
        return extract_command(catalog, work / "C2", "--livi-run", str(work / "livi-run"))
    embed = [PIPELINE, "run", "embed", "--model", str(work / "livi-run"), "--audio", str(catalog)]
    return [*embed, "--output", str(work / "C.parquet")]


def _prepare(catalog: Path, work: Path) -> None:
    """A first extraction and a LIVI head trained on it, so that C has a run to load."""
    if not (work / "livi-run" / "last.pt").is_file():
        subprocess.run(extract_command(catalog, work / "first-B"), check=True, capture_output=True)
        train = [PIPELINE, "run", "train", "livi", "--shards", str(work / "first-B")]
        train += ["--output", str(work / "livi-run"), "--epochs", "1"]
        subprocess.run(train, check=True, capture_output=True)


def _windows_per_sung_minute(features: Path, catalog: Path) -> float:
    windows = pq.read_table(features / "segments").num_rows
    sung_s = sum(end - start for t in read_truth(catalog).values() for start, end in t.regions)
    return windows / (sung_s / 60)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("throughput-bench"))
    parser.add_argument("--songs", type=int, default=6, help="full-length generated songs")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8, help="A2's batch size")
    parser.add_argument("--methods", nargs="+", default=["A", "A2", "B", "C", "C2"])
    parser.add_argument(
        "--judging-cost",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time Whisper on the windows the singing judgement drops (default: on)",
    )
    parser.add_argument(
        "--real-cache",
        type=Path,
        help="also measure the judging cost on the real recordings (fetched into this folder)",
    )
    parser.add_argument("--loop", choices=LOOPS, help=argparse.SUPPRESS)  # one run of A or A2
    parser.add_argument("--catalog", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--loop-result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loop:
        user_loop(args.loop, args.catalog, args.batch_size, args.loop_result)
        return
    catalog = args.workdir / "bench" / "catalog.csv"
    full_song_bench(catalog, args.songs)
    truth = read_truth(catalog)
    audio_s = sum(t.duration_s for t in truth.values())
    work = args.workdir / "runs"
    work.mkdir(parents=True, exist_ok=True)
    if {"C", "C2"} & set(args.methods):
        _prepare(catalog, work)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.methods}
    for repeat in range(args.repeats):
        for method in args.methods:  # interleaved: the machine's noise hits every method alike
            for folder in ("B", "B0", "C2"):  # each run starts from nothing
                shutil.rmtree(work / folder, ignore_errors=True)
            (work / "C.parquet").unlink(missing_ok=True)
            wall_s, peaks = run_measured(_command(method, catalog, work, args))
            rss_mb = max(peaks.values())
            run: dict[str, Any] = {"wall_s": wall_s, "peak_rss_mb": rss_mb}
            if method in LOOPS:
                run["track_s"] = json.loads((work / f"{method}.json").read_text())
            if method == "B":
                run["windows_per_sung_min"] = _windows_per_sung_minute(work / "B", catalog)
            runs[method].append(run)
            print(f"repeat {repeat + 1}: {method} {wall_s:.1f} s, {rss_mb:.0f} MB", flush=True)
    rows = [_row(method, r, audio_s, len(truth)) for method, r in runs.items()]
    ratios = _ratios(runs)
    print(f"\n{len(truth)} songs, {audio_s:.0f} s of audio, {os.cpu_count()} CPUs")
    print_table(rows)
    print_table([ratios])
    payload: dict[str, Any] = {"songs": len(truth), "audio_s": audio_s, "runs": runs}
    payload["rows"] = rows
    if args.judging_cost:
        sets = {"generated full songs": catalog}
        if args.real_cache:
            from benchmarks.real_recordings import real_catalog

            sets["real recordings"] = real_catalog(args.real_cache)
        costs = {name: judging_cost(path) for name, path in sets.items()}
        payload["judging_cost"] = costs
        print_table([{"set": name, **_cost_summary(cost)} for name, cost in costs.items()])
    print(f"json: {write_json('throughput', {**payload, 'ratios': ratios})}")


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


def _cost_summary(cost: list[dict[str, Any]]) -> dict[str, Any]:
    unsung_s = [c["unsung_whisper_s"] for c in cost]
    return {
        "unsung_windows_per_track": round(statistics.mean(c["unsung_windows"] for c in cost), 2),
        "windows_per_track": round(statistics.mean(c["windows"] for c in cost), 2),
        "unsung_whisper_s_median": round(statistics.median(unsung_s), 2),
        "unsung_whisper_s_mean": round(statistics.mean(unsung_s), 2),
        "extract_track_s_median": round(statistics.median(c["extract_track_s"] for c in cost), 2),
        "share_of_time": round(sum(unsung_s) / sum(c["extract_track_s"] for c in cost), 3),
    }


def _ratios(runs: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Each ratio per repeat (both sides from the same pass), then the median."""
    pairs = (
        ("B", "A"),
        ("B", "A2"),
        ("B0", "A"),
        ("B0", "A2"),
        ("B", "B0"),
        ("A", "C"),
        ("A2", "C"),
        ("A", "C2"),
        ("A2", "C2"),
    )
    ratios = {}
    for top, bottom in pairs:
        if top in runs and bottom in runs:
            values = [
                t["wall_s"] / b["wall_s"] for t, b in zip(runs[top], runs[bottom], strict=True)
            ]
            ratios[f"{top}/{bottom}"] = round(statistics.median(values), 3)
    return ratios


if __name__ == "__main__":
    main()

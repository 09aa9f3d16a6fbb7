"""Version retrieval on a generated bench, split by work, and what LIVI saves at query time.

Generates a ``make-bench`` dataset, splits its works into train and test (whole works: no work
on both sides; distractors too), extracts each side with the CLI, trains LIVI and WEALY
(``--preset small``) on the train side only, embeds the test side with every method and
evaluates there: every test track with another version queries all test tracks.

Then, on the test tracks, one loaded Whisper serves both paths from audio, alternating per
track (load time excluded from both): (a) LIVI from audio = decode, segment, encoder, LIVI head;
(b) the transcript-text teacher = decode, segment, encoder, transcription, text embedding.
Each path's seconds per track (median, mean, max) and per stage are printed, and the ratios
(b)/(a) of the medians and of the means (the paper's measure: average seconds per track), each
the median over ``--speed-repeats`` timing passes; both paths' embeddings are evaluated too.

    PYTHONPATH=. python -m benchmarks.retrieval --works 30 --versions-per-work 3 --distractors 10

The command above (100 tracks) took about 25 minutes on 2 shared CPU cores, extraction most of
it; a re-run with the same ``--workdir`` reuses the bench, the features and the runs (447 s,
mostly the three timing passes).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, extract_command, print_table, write_json
from pipeline.config import ExtractConfig
from pipeline.io.catalog import read_catalog
from pipeline.io.embeddings import write_embeddings
from pipeline.models.whisper_runtime import WhisperRuntime
from pipeline.records import CatalogEntry, Rejected
from pipeline.retrieval.audio import LiviAudioEmbedder, track_encoder_states
from pipeline.retrieval.embed import TrackMeans, run_embed
from pipeline.retrieval.evaluate import FusionSpec, evaluate
from pipeline.stages.embed_text import clean_transcript, embed_text, text_dimension
from pipeline.stages.transcribe import transcribe
from pipeline.synth.bench import make_bench
from pipeline.track import prepare_track
from pipeline.train.data import split_works
from pipeline.train.livi import livi_preset, train_livi
from pipeline.train.wealy import train_wealy, wealy_preset

FUSION_WEIGHT = 1.5  # WEALY's D = D_audio + 1.5 * D_wealy
AudioPath = Callable[[CatalogEntry], np.ndarray | None]


def bench_catalog(root: Path, args: argparse.Namespace) -> Path:
    """The generated bench under ``root``, reused when a re-run with the same ``--workdir`` and
    the same bench arguments finds it (extract and train then resume from what they wrote)."""
    wanted = {k: getattr(args, k) for k in ("works", "versions_per_work", "distractors", "seed")}
    recorded = root / "bench-args.json"
    catalog = root / "bench" / "catalog.csv"  # written after every audio file
    if catalog.is_file() and recorded.is_file():
        found = json.loads(recorded.read_text())
        if found != wanted:
            raise SystemExit(f"{root} holds a bench made with {found}: use another --workdir")
        return catalog
    made = make_bench(root / "bench", **wanted, instrumentals=0, spoken=0)
    recorded.write_text(json.dumps(wanted))
    return made


def split_catalog(catalog: Path, test_share: float, seed: int) -> tuple[Path, Path]:
    """train.csv and test.csv beside ``catalog`` (so relative paths still resolve), by work;
    multi-version works and distractors are drawn separately, so both sides get some."""
    with open(catalog, newline="") as f:
        rows = list(csv.DictReader(f))
    _train, test = split_works(Counter(r["work_id"] for r in rows), test_share, seed)
    paths = (catalog.with_name("train.csv"), catalog.with_name("test.csv"))
    for path, keep in zip(paths, (False, True), strict=True):
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(r for r in rows if (r["work_id"] in test) == keep)
    return paths


def extract(catalog: Path, output: Path) -> dict[str, Any]:
    """``pipeline run extract`` (the CLI, a LocalCluster); the run summary."""
    subprocess.run(
        extract_command(catalog, output),
        check=True,
        capture_output=True,
    )
    return json.loads((output / "manifest.json").read_text())["summary"]


class StageClock:
    """Wall seconds per stage, summed over every track a path embeds: where the time goes."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start


def livi_from_audio(embedder: LiviAudioEmbedder, clock: StageClock) -> AudioPath:
    """(a): decode, segment, encoder, LIVI head: ``pipeline run embed --audio``, stage by stage."""

    def embed(entry: CatalogEntry) -> np.ndarray | None:
        with clock("decode+segment"):
            track = prepare_track(entry, embedder.config)
        if isinstance(track, Rejected):
            return None
        with clock("encoder"):
            states = embedder.encoder_states(track)
        with clock("LIVI head"):
            return embedder.embed_states(states)

    return embed


def text_from_audio(runtime: WhisperRuntime, config: ExtractConfig, clock: StageClock) -> AudioPath:
    """(b): decode, segment, encoder, transcription, text embedding: the LIVI teacher."""

    def embed(entry: CatalogEntry) -> np.ndarray | None:
        with clock("decode+segment"):
            track = prepare_track(entry, config)
        if isinstance(track, Rejected):
            return None
        with clock("encoder"):
            states = list(track_encoder_states(track, runtime, config.whisper.batch_size))
        means = TrackMeans()
        for segment_states in states:
            with clock("transcription"):
                text = transcribe(segment_states, runtime, config.whisper).text
            with clock("text embedding"):
                vector = embed_text(clean_transcript(text), config.text)
            if vector is not None:
                means.add(entry.track_id, vector, 1)
        return means.normalised().get(entry.track_id)

    return embed


def time_paths(
    entries: list[CatalogEntry], paths: dict[str, AudioPath], repeats: int
) -> tuple[list[dict[str, list[float]]], dict[str, dict[str, np.ndarray]]]:
    """Per repeat, per path, every track's wall seconds; and the first repeat's embeddings.

    The order of the paths alternates per track (and per repeat), so that machine noise hits
    both alike.
    """
    runs: list[dict[str, list[float]]] = []
    embeddings: dict[str, dict[str, np.ndarray]] = {name: {} for name in paths}
    names = list(paths)
    for repeat in range(repeats):
        seconds: dict[str, list[float]] = {name: [] for name in paths}
        for i, entry in enumerate(entries):
            for name in names if (i + repeat) % 2 == 0 else names[::-1]:
                start = time.perf_counter()
                vector = paths[name](entry)
                seconds[name].append(time.perf_counter() - start)
                if vector is not None and repeat == 0:
                    embeddings[name][entry.track_id] = vector
        runs.append(seconds)
    return runs, embeddings


def _metrics_row(
    method: str, source: str, metrics: dict[str, Any], seconds_per_track: float
) -> dict[str, Any]:
    return {
        "method": method,
        "input": source,
        "tracks": metrics["tracks"],
        "queries": metrics["queries"],
        "MAP": round(metrics["map"], 3),
        "MR1": round(metrics["mr1"], 2),
        "HR@1": round(metrics["hr_at_1"], 3),
        "HR@10": round(metrics["hr_at_10"], 3),
        "random_MAP": round(metrics["random_map"], 3),
        "s_per_track": round(seconds_per_track, 4),
    }


def train_runs(train_features: Path, root: Path, args: argparse.Namespace) -> dict[str, Path]:
    """LIVI and WEALY, ``--preset small``, trained on the train side only."""
    runs = {"LIVI": root / "runs" / "livi", "WEALY": root / "runs" / "wealy"}
    livi = dataclasses.replace(livi_preset("small"), epochs=args.livi_epochs, seed=args.seed)
    train_livi(train_features, runs["LIVI"], livi)
    wealy = dataclasses.replace(wealy_preset("small"), epochs=args.wealy_epochs, seed=args.seed)
    train_wealy(train_features, runs["WEALY"], wealy)
    return runs


def feature_rows(
    runs: dict[str, Path], test_features: Path, test_csv: Path, out_dir: Path
) -> list[dict[str, Any]]:
    """Every method embedded from the test features, evaluated; then the two fusions."""
    rows, files, seconds = [], {}, {}
    models = {"whisper-avg": "whisper-avg", "transcript-text": "transcript-text"}
    models.update({name: str(run) for name, run in runs.items()})
    for name, model in models.items():
        files[name] = out_dir / f"{name}.parquet"
        start = time.perf_counter()
        summary = run_embed(model, test_features, files[name])
        seconds[name] = (time.perf_counter() - start) / summary.ok_tracks
        rows.append(_metrics_row(name, "features", evaluate(files[name], test_csv), seconds[name]))
    fusion = FusionSpec(files["WEALY"], FUSION_WEIGHT)
    for first in ("LIVI", "transcript-text"):
        metrics = evaluate(files[first], test_csv, fusion)
        name = f"{first} + {FUSION_WEIGHT} x WEALY"
        rows.append(_metrics_row(name, "features", metrics, seconds[first] + seconds["WEALY"]))
    return rows


def audio_rows(
    livi_run: Path, test_csv: Path, out_dir: Path, repeats: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(a) and (b) timed from audio on the test tracks, their embeddings evaluated: the metric
    rows (median seconds per track), the timing rows (per path, with its stages) and the
    ratios (b)/(a), each the median over repeats."""
    config = ExtractConfig()
    embedder = LiviAudioEmbedder.load(livi_run, config)  # its Whisper serves both paths
    text_dimension()  # loads the text encoder before any timing
    clocks = {"LIVI": StageClock(), "transcript-text": StageClock()}
    paths = {
        "LIVI": livi_from_audio(embedder, clocks["LIVI"]),
        "transcript-text": text_from_audio(embedder.runtime, config, clocks["transcript-text"]),
    }
    entries = read_catalog(test_csv)
    for name, embed in paths.items():  # warm-up, untimed
        embed(entries[0])
        clocks[name].seconds.clear()
    runs, embeddings = time_paths(entries, paths, repeats)

    def per_repeat(statistic: Callable[[list[float]], float], name: str) -> float:
        return statistics.median(statistic(seconds[name]) for seconds in runs)

    rows, timing = [], []
    for key, name in (("a", "LIVI"), ("b", "transcript-text")):
        target = out_dir / f"{name}-from-audio.parquet"
        write_embeddings(embeddings[name], [e.track_id for e in entries], target)
        median = per_repeat(statistics.median, name)
        rows.append(_metrics_row(name, "audio, median", evaluate(target, test_csv), median))
        timed = len(entries) * repeats
        timing.append(
            {
                "path": f"({key}) {name} from audio",
                "median_s_per_track": round(median, 3),
                "mean_s_per_track": round(per_repeat(statistics.mean, name), 3),
                "max_s_per_track": round(per_repeat(max, name), 3),
                **{
                    f"{stage}_s": round(seconds / timed, 3)
                    for stage, seconds in clocks[name].seconds.items()
                },
            }
        )
    ratios = {
        "of_medians": statistics.median(
            statistics.median(r["transcript-text"]) / statistics.median(r["LIVI"]) for r in runs
        ),
        "of_means": statistics.median(
            statistics.mean(r["transcript-text"]) / statistics.mean(r["LIVI"]) for r in runs
        ),
        "repeats": repeats,
        "tracks": len(entries),
        "per_track_s": runs,
    }
    return rows, timing, ratios


def plot_speed(runs: list[dict[str, list[float]]], target: Path) -> Path:
    """Each path's seconds per track (median over the passes), slowest first, with its mean:
    the teacher's heavy tail against LIVI's flat cost, at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, label, colour in (
        ("transcript-text", "(b) transcript-text: transcribe, embed text", "tab:orange"),
        ("LIVI", "(a) LIVI: encoder and head only", "tab:blue"),
    ):
        per_track = [statistics.median(r[name][i] for r in runs) for i in range(len(runs[0][name]))]
        ranked = sorted(per_track, reverse=True)
        ax.plot(range(1, len(ranked) + 1), ranked, "o-", ms=3, color=colour, label=label)
        mean = statistics.mean(per_track)
        ax.axhline(mean, color=colour, ls="--", lw=1)
        ax.annotate(f"mean {mean:.2f} s", (len(ranked), mean), ha="right", va="bottom")
    ax.set_yscale("log")
    ax.set_xlabel("test tracks, slowest first")
    ax.set_ylabel("seconds per track from audio")
    ax.set_title(
        f"Embedding from audio, {len(runs)} passes, {os.cpu_count()} CPU cores", fontsize=10
    )
    ax.legend(frameon=False)
    fig.tight_layout()
    target.parent.mkdir(exist_ok=True)
    fig.savefig(target, dpi=120)
    plt.close(fig)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--works", type=int, default=16)
    parser.add_argument("--versions-per-work", type=int, default=3)
    parser.add_argument("--distractors", type=int, default=8)
    parser.add_argument("--test-share", type=float, default=0.34, help="of the works")
    parser.add_argument("--livi-epochs", type=int, default=20)
    parser.add_argument("--wealy-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed-repeats", type=int, default=3, help="timing passes (3)")
    parser.add_argument(
        "--workdir", type=Path, help="keep data, features and runs here; a re-run reuses them"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        began = time.perf_counter()
        catalog = bench_catalog(root, args)
        train_csv, test_csv = split_catalog(catalog, args.test_share, args.seed)
        features = {"train": root / "features-train", "test": root / "features-test"}
        summaries = {
            "train": extract(train_csv, features["train"]),
            "test": extract(test_csv, features["test"]),
        }
        runs = train_runs(features["train"], root, args)
        rows = feature_rows(runs, features["test"], test_csv, root / "embeddings")
        more_rows, timing, ratios = audio_rows(
            runs["LIVI"], test_csv, root / "embeddings", args.speed_repeats
        )
        rows += more_rows
        total_s = time.perf_counter() - began

    print_table(rows)
    print()
    print_table(timing)
    print(
        f"(b)/(a), medians over {args.speed_repeats} repeats: ratio of the per-track medians "
        f"{ratios['of_medians']:.2f}, ratio of the per-track means {ratios['of_means']:.2f} "
        "(issue target: >= 3)"
    )
    print(f"total wall time: {total_s:.0f} s")
    payload = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "tracks": {"train": summaries["train"]["tracks"], "test": summaries["test"]["tracks"]},
        "extract": summaries,
        "rows": rows,
        "timing": timing,
        "ratios_b_over_a": ratios,
        "fusion_weight": FUSION_WEIGHT,
        "total_wall_s": total_s,
    }
    print(f"json: {write_json('retrieval', payload)}")
    print(f"plot: {plot_speed(ratios['per_track_s'], RESULTS / 'retrieval-speed.png')}")


if __name__ == "__main__":
    main()

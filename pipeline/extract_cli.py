"""``pipeline run extract``: its flags, each declared once beside the setting it sets, and
the run with its progress bar and summary.

Torch, Dask and Whisper load only after the arguments and the files they name are checked: a
wrong path fails in a fraction of a second."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from pipeline.config import ExtractConfig, add_set_argument, load_config
from pipeline.io.output_dir import INPUT_SKIPPED, REPORT_FILE, OutputDirError
from pipeline.models.separator import verified_weights
from pipeline.run_log import add_log_format_argument, configure, run_log_handler, stderr_handler

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

# Flags that set one setting each: (flag, the setting it overrides, argparse options). A new
# flag is one line here; its value wins over --set and the --config file.
SETTING_FLAGS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--input", "input", {"required": True, "help": "catalog CSV (track_id, audio_path, ...) "
                          "or a folder of music, read recursively"}),
    ("--output", "output", {"default": "features", "help": "output folder (default: features)"}),
    ("--max-duration-s", "decode.max_duration_s",
     {"type": float, "help": "keep this much of each track (300)"}),
    ("--segment-mode", "segment.mode",
     {"choices": ["fixed", "vocal"], "help": "fixed (default) or vocal"}),
    ("--hop-s", "segment.hop_s", {"type": float, "help": "hop between fixed segments (30)"}),
    ("--separator", "separate.method",
     {"choices": ["none", "htdemucs"], "help": "vocal separation (none)"}),
    ("--separator-weights", "separate.weights",
     {"help": "htdemucs: the model's .th file (see README)"}),
    ("--separator-feed", "separate.feed", {"choices": ["whisper", "detector"], "help": "who "
     "hears the vocal stem: segmentation and Whisper (default), or only Silero"}),
    ("--keep-stems", "separate.keep_stems",
     {"action": "store_true", "default": None, "help": "write stems/<track_id>.flac"}),
    ("--whisper-model", "whisper.model_dir",
     {"help": "CTranslate2 Whisper folder (default: bundled base)"}),
    ("--device", "whisper.device",
     {"choices": ["cpu", "cuda"], "help": "where Whisper and demucs run (cpu)"}),
    ("--compute-type", "whisper.compute_type",
     {"help": "CTranslate2 compute type (int8 on CPU, float16 on CUDA)"}),
    ("--batch-size", "whisper.batch_size",
     {"type": int, "help": "segments per batch: encoder, every decoding (8)"}),
    ("--language", "whisper.language", {"help": "decode every track in this Whisper code, "
     "over the catalog's (detection is recorded)"}),
    ("--initial-prompt", "whisper.initial_prompt",
     {"help": "text given to Whisper before each segment"}),
    ("--partition-size", "partition_size",
     {"type": int, "help": "tracks per output partition (16)"}),
    ("--livi-run", "livi_run", {"help": "a LIVI training run: extract only its audio "
                                "embeddings (no transcripts, no shards)"}),
    ("--scheduler", "run.scheduler", {"help": "Dask scheduler address, e.g. tcp://host:8786"}),
    ("--workers", "run.n_workers",
     {"type": int, "help": "LocalCluster worker processes (one per core)"}),
    ("--retries", "run.retries", {"type": int, "help": "Dask task retries (2)"}),
    ("--allow-protocols", "run.allow_protocols", {"metavar": "LIST", "help": "audio_path "
     "protocols to open besides local files and s3/gs/abfs, e.g. http,https"}),
    ("--strict", "run.strict", {"action": "store_true", "default": None,
                                "help": "exit non-zero when any track is rejected"}),
)  # fmt: skip


def register(run: argparse._SubParsersAction) -> None:
    """Add ``pipeline run extract``."""
    p = run.add_parser("extract", help="catalog -> Whisper features")
    for flag, setting, options in SETTING_FLAGS:
        named = {"action", "choices", "metavar"} & set(options)  # argparse shows those well
        shown = {} if named else {"metavar": flag[2:].upper().replace("-", "_")}
        p.add_argument(flag, dest=setting, **shown, **options)
    p.add_argument("--config", type=Path, help="YAML file with settings (see README)")
    add_set_argument(p, "segment.merge_gap_s=1.5")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs made with other settings instead of refusing",
    )
    add_log_format_argument(p)
    p.set_defaults(handler=_extract)


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


def _setup_logging(output: Path, log_format: str) -> Path:
    """Text goes to the log file only (the terminal has the progress bar); JSON goes to the log
    file and to stderr, for a collector."""
    handler, log_file = run_log_handler(output, "extract", log_format)
    handlers = [handler]
    if log_format == "json":
        handlers.append(stderr_handler(log_format, log_file.stem))
    configure(handlers, log_format)
    return log_file


def to_stderr(message: str, level: int, log_format: str) -> None:
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
        to_stderr(warning, logging.WARNING, log_format)


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
    overrides = {setting: getattr(args, setting) for _, setting, _ in SETTING_FLAGS}
    config = load_config(args.config, overrides, args.set)
    if config.separate.method != "none":  # a missing or untrusted file fails before torch
        # loads and before the log is written; run_extract loads it
        verified_weights(config.separate.weights, config.separate.weights_sha256)
    from pipeline.io.object_store import is_url, upload_log
    from pipeline.runner import run_extract

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
        to_stderr(f"--strict: {rejected} track(s) rejected", logging.WARNING, args.log_format)
        return 3
    return 0

"""``pipeline run train livi|wealy``: arguments, logging and the progress bar."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from pipeline.config import add_set_argument, apply_overrides
from pipeline.errors import UserError
from pipeline.io.object_store import is_url, location, staged_folder, upload_log
from pipeline.io.run_dir import CONFIG_FILE, LAST, SPLIT_FILE
from pipeline.io.webdataset import list_shards
from pipeline.report import write_report
from pipeline.report.curve import CURVE_FILE
from pipeline.run_log import add_log_format_argument, configure, run_log_handler, stderr_handler

if TYPE_CHECKING:
    from pipeline.train.loop import EpochResult

    Trainer = Callable[..., list[EpochResult]]

# What a resumed run reads from its folder; for a URL, fetched to local scratch first.
RESUME_FILES = frozenset({CONFIG_FILE, SPLIT_FILE, LAST})


def _trainer(model: str) -> tuple[Callable[[str], Any], Trainer]:
    """(preset function, train function) of ``model``; imports torch, so only when training."""
    if model == "livi":
        from pipeline.train.livi import livi_preset, train_livi

        return livi_preset, train_livi
    if model == "singing":
        from pipeline.train.singing import detector_preset, train_singing

        return detector_preset, train_singing
    from pipeline.train.wealy import train_wealy, wealy_preset

    return wealy_preset, train_wealy


class TqdmLogHandler(logging.Handler):
    """Log lines above the progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record))


def _setup_logging(run_dir: Path, log_format: str) -> Path:
    """Text: the file, and the terminal above the progress bar. JSON: the file and stderr."""
    file_handler, log_file = run_log_handler(run_dir, "train", log_format)
    if log_format == "json":
        terminal = stderr_handler(log_format, log_file.stem)
    else:
        terminal = TqdmLogHandler()
        terminal.setFormatter(logging.Formatter("%(message)s"))
    configure([file_handler, terminal], log_format)
    return log_file


def _train(args: argparse.Namespace) -> int:
    preset, trainer = _trainer(args.model)
    config = preset(args.preset)
    flags = {"device": args.device, "epochs": args.epochs, "seed": args.seed}
    config = dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})
    config = apply_overrides(config, args.set)
    list_shards(args.shards)  # no shards: fail before making a run folder
    # A URL: the run folder is staged on local scratch, and each epoch's files are uploaded
    # as the epoch ends, last.pt last (the epoch's commit); a re-run resumes from there.
    with staged_folder(args.output, RESUME_FILES.__contains__, commit=(LAST,)) as run:
        log_file: Path | str = _setup_logging(run.path, args.log_format)
        bars: list[tqdm] = []

        def on_step(step: int, loss: float) -> None:
            if args.log_format == "json":  # whole lines only
                return
            if not bars:
                bars.append(tqdm(initial=step - 1, unit="step", desc=f"train {args.model}"))
            bars[0].update(1)
            bars[0].set_postfix(loss=f"{loss:.4f}")

        try:
            results = trainer(args.shards, run.path, config, on_step, on_epoch=lambda _: run.sync())
        except UserError as e:  # a settings mismatch, a NaN: name the URL, not its scratch copy
            if not is_url(args.output) or str(run.path) not in str(e):
                raise
            raise type(e)(str(e).replace(str(run.path), str(args.output))) from None
        finally:
            for bar in bars:
                bar.close()
            if is_url(args.output):
                log_file = upload_log(Path(log_file), str(args.output))
        report = write_report(run.path, str(args.output) if is_url(args.output) else None)
    trained = f"{len(results)} epoch(s) trained" if results else "nothing left to train"
    files = f"best.pt, last.pt, {CURVE_FILE}, {report.name}; log: {log_file}"
    print(f"{trained}; run folder {args.output} ({files})")
    return 0


def register_train(run: argparse._SubParsersAction) -> None:
    """Add ``train livi``, ``train wealy`` and ``train singing`` under ``pipeline run``."""
    models = run.add_parser("train", help="train LIVI, WEALY or the singing detector on shards")
    sub = models.add_subparsers(dest="model", required=True)
    helps = {
        "livi": "audio encoder into the lyrics space",
        "wealy": "decoder-state embeddings",
        "singing": "the audio-only path's singing detector, from the judge's verdicts "
        "(extract with --set singing.keep_unsung_states=true)",
    }
    for name, help_text in helps.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--shards",
            type=location,
            required=True,
            help="extraction output folder or URL (s3://bucket/features)",
        )
        p.add_argument(
            "--output",
            type=location,
            required=True,
            help="run folder or URL (s3://bucket/runs/x); resumes if there",
        )
        p.add_argument("--preset", choices=["paper", "small"], default="paper")
        p.add_argument("--device", choices=["cpu", "cuda"], help="where to train (cpu)")
        p.add_argument("--epochs", type=int, help="epochs in total, counting resumed ones")
        p.add_argument("--seed", type=int, help="seed of weights, order and crops (0)")
        add_set_argument(p, "batch_size=64")
        add_log_format_argument(p)
        p.set_defaults(handler=_train)

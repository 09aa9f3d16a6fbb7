"""Which training run a deployment uses: a link to the run folder with the best validation MAP.

Periodic retraining makes a new run folder each time; the nightly job embeds with whatever
``models/<kind>`` points to. A new run replaces the published one only when the validation
MAP in its ``best.pt`` is higher, so a retraining that came out worse changes nothing. The
link is swapped with ``os.replace``: a job that reads it sees the old run or the new one.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.train.run_dir import BEST, RunFolderError, load_checkpoint, read_run_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishDecision:
    published: bool
    candidate_map: float | None
    incumbent_map: float | None  # None: nothing was published, or it had no validation MAP


def best_validation_map(run_dir: Path) -> float | None:
    """The validation MAP of a run's best epoch; None when it had no works to validate on."""
    path = Path(run_dir) / BEST
    if not path.is_file():
        raise RunFolderError(f"{run_dir}: no {BEST}; has the run finished an epoch?")
    history = load_checkpoint(path)["history"]
    # best.pt is saved at its epoch, so its history ends with that epoch.
    score = history[-1]["val_score"]
    return None if score is None else float(score)


def _better(candidate: float | None, incumbent: float | None) -> bool:
    if incumbent is None:
        return True  # a run with a score beats one without; with none, the newer run
    return candidate is not None and candidate > incumbent


def publish_if_better(run_dir: Path, link: Path) -> PublishDecision:
    """Point ``link`` at ``run_dir`` if it scores higher than the run ``link`` points to."""
    run_dir = Path(run_dir).absolute()
    link = Path(link)
    kind, _ = read_run_config(run_dir)
    candidate = best_validation_map(run_dir)
    incumbent = None
    if link.exists() and not link.is_symlink():
        raise RunFolderError(f"{link} is a folder, not a link to a run; move it away")
    if link.exists():
        incumbent_kind, _ = read_run_config(link)
        if incumbent_kind != kind:
            raise RunFolderError(
                f"{link} points to a {incumbent_kind} run, {run_dir} is a {kind} run; "
                "publish each kind under its own link"
            )
        if link.resolve() == run_dir.resolve():
            return PublishDecision(True, candidate, candidate)  # a re-run of the same task
        incumbent = best_validation_map(link)
    elif link.is_symlink():
        raise RunFolderError(f"{link} points to {os.readlink(link)}, which is gone; remove it")
    better = _better(candidate, incumbent)
    if better:
        link.parent.mkdir(parents=True, exist_ok=True)
        staging = link.with_name(f".{link.name}.tmp")
        staging.unlink(missing_ok=True)
        staging.symlink_to(run_dir, target_is_directory=True)
        os.replace(staging, link)
    log.info(
        "%s: validation MAP %s against %s: %s",
        run_dir,
        candidate,
        incumbent,
        f"published as {link}" if better else f"{link} unchanged",
    )
    return PublishDecision(better, candidate, incumbent)

"""Which training run a deployment uses: a link to the run folder with the best validation MAP.

Periodic retraining makes a new run folder each time; the nightly job embeds with whatever
``models/<kind>`` points to. A new run replaces the published one only when the validation
MAP in its ``best.pt`` is higher, so a retraining that came out worse changes nothing. The
link is swapped with ``os.replace``: a job that reads it sees the old run or the new one.

A bucket has no links: there ``models/<kind>`` is a copy of what a reader of the run loads
(``split.json``, ``best.pt``, then ``config.json``), and ``published.json``, naming the run,
is written last. A reader that loads the model while a newer one is being copied may get the
new weights with the old split; publish while the nightly job is not embedding.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.io.object_store import (
    exists_at,
    fetched,
    is_url,
    join,
    read_bytes_at,
    write_bytes_at,
)
from pipeline.io.run_dir import (
    BEST,
    CONFIG_FILE,
    SPLIT_FILE,
    RunFolderError,
    load_checkpoint,
    read_run_config,
)

PUBLISHED = "published.json"  # in a bucket's models/<kind>: the run it is a copy of, last

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishDecision:
    published: bool
    candidate_map: float | None
    incumbent_map: float | None  # None: nothing was published, or it had no validation MAP


def best_validation_map(run_dir: Path | str) -> float | None:
    """The validation MAP of a run's (a folder's or URL's) best epoch; None when it had no
    works to validate on."""
    with fetched(run_dir, (BEST,)) as folder:
        path = folder / BEST
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


def _decided(
    run_dir: Path | str,
    candidate: float | None,
    incumbent: float | None,
    better: bool,
    outcome: str,
) -> PublishDecision:
    """The decision, logged with both scores and what became of the published name."""
    log.info("%s: validation MAP %s against %s: %s", run_dir, candidate, incumbent, outcome)
    return PublishDecision(better, candidate, incumbent)


def publish_if_better(run_dir: Path | str, link: Path | str) -> PublishDecision:
    """Point ``link`` at ``run_dir`` if it scores higher than the run ``link`` points to (in a
    bucket: copy the run there)."""
    if is_url(run_dir) or is_url(link):
        return _publish_copy(str(run_dir), str(link))
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
    outcome = f"published as {link}" if better else f"{link} unchanged"
    return _decided(run_dir, candidate, incumbent, better, outcome)


def _publish_copy(run_dir: str, target: str) -> PublishDecision:
    """``publish_if_better`` where links cannot be: ``target`` becomes a copy of the run."""
    kind, _ = read_run_config(run_dir)
    candidate = best_validation_map(run_dir)
    incumbent = None
    if exists_at(join(target, CONFIG_FILE)):
        incumbent_kind, _ = read_run_config(target)
        if incumbent_kind != kind:
            raise RunFolderError(
                f"{target} holds a {incumbent_kind} run, {run_dir} is a {kind} run; "
                "publish each kind under its own name"
            )
        if exists_at(join(target, PUBLISHED)):
            if json.loads(read_bytes_at(join(target, PUBLISHED)))["run"] == run_dir:
                return PublishDecision(True, candidate, candidate)  # a re-run of the same task
        incumbent = best_validation_map(target)
    better = _better(candidate, incumbent)
    if better:
        for name in (SPLIT_FILE, BEST, CONFIG_FILE):
            write_bytes_at(join(target, name), read_bytes_at(join(run_dir, name)))
        document = {"run": run_dir, "kind": kind, "val_map": candidate}
        write_bytes_at(join(target, PUBLISHED), json.dumps(document, indent=2).encode())
    outcome = f"copied to {target}" if better else f"{target} unchanged"
    return _decided(run_dir, candidate, incumbent, better, outcome)

"""The files of a training run folder: config, work split, checkpoints.

``config.json`` says what was trained (kind and resolved frozen config) and is written before
the first step; a second run on the same folder must have the same settings (only ``epochs``
and ``device`` may change), so that resuming never mixes two runs. ``split.json`` names the
train, validation and test works: validation picks ``best.pt`` (and so what is published), the
test works only report, through ``pipeline run evaluate --holdout``. A run split before test
works were recorded has none in its ``split.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import UserError
from pipeline.io.atomic import atomic_path, atomic_write_bytes
from pipeline.io.object_store import fetched, is_url, join

CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
LAST = "last.pt"
BEST = "best.pt"
# May change between a run and its resume. More epochs for WEALY stretch its cosine decay
# from the resumed step on; the steps already taken keep the schedule they had.
RESUMABLE_KEYS = frozenset({"epochs", "device"})

C = TypeVar("C")


class RunFolderError(UserError, FileNotFoundError):
    """A folder given as a training run lacks what a run folder holds."""


class RunConfigMismatchError(UserError, ValueError):
    """A run folder holds a run with other settings; resuming it would mix two runs."""


def _json_safe(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config))  # tuples become lists, as they will on reading


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _json_safe(config).items() if k not in RESUMABLE_KEYS}


def write_run_config(run_dir: Path, kind: str, config: Any) -> None:
    """Write ``config.json`` for a frozen config, or check the one there matches it. A setting
    added since that run was written reads as its default, so the run still resumes."""
    values = dataclasses.asdict(config)
    path = run_dir / CONFIG_FILE
    if path.exists():
        found_kind, found = read_run_config(run_dir)
        if found_kind == kind:
            found = dataclasses.asdict(config_from_dict(type(config), found)) | found
        old, new = _comparable(found), _comparable(values)
        if found_kind != kind or old != new:
            changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
            raise RunConfigMismatchError(
                f"{run_dir} holds a {found_kind} run with other settings ({detail or 'kind'}); "
                "use another --output, or the same settings to resume it"
            )
    document = {"kind": kind, "config": _json_safe(values)}
    atomic_write_bytes(path, json.dumps(document, indent=2, sort_keys=True).encode())


def _read_json(run_dir: Path | str, name: str) -> Any:
    """A JSON file of a run folder or of a run's URL."""
    missing = RunFolderError(f"{run_dir}: no {name}; is this a training run folder?")
    if is_url(run_dir):
        from fsspec.core import url_to_fs

        fs, path = url_to_fs(join(run_dir, name))
        try:
            return json.loads(fs.cat_file(path))
        except FileNotFoundError:
            raise missing from None
    path = Path(run_dir) / name
    if not path.is_file():
        raise missing
    return json.loads(path.read_text())


def read_run_config(run_dir: Path | str) -> tuple[str, dict[str, Any]]:
    """(kind, config values) of a run folder or URL."""
    document = _read_json(run_dir, CONFIG_FILE)
    return document["kind"], document["config"]


@contextmanager
def run_copy(run_dir: Path | str) -> Iterator[Path]:
    """A run folder to load a model from: itself, or for a URL a scratch copy of what loading
    reads (config, split, ``best.pt`` else ``last.pt``); checked like a folder, named by URL."""
    with fetched(run_dir, (CONFIG_FILE,), (SPLIT_FILE,), (BEST, LAST)) as folder:
        if is_url(run_dir):
            read_run_config(run_dir if not (folder / CONFIG_FILE).is_file() else folder)
            if not (folder / BEST).is_file() and not (folder / LAST).is_file():
                raise RunFolderError(
                    f"{run_dir}: no {BEST} or {LAST}; has the run finished an epoch?"
                )
        yield folder


def run_checkpoint(run_dir: Path) -> Path:
    """The weights a run folder's model is used with: ``best.pt``, else ``last.pt``."""
    checkpoint = run_dir / BEST if (run_dir / BEST).exists() else run_dir / LAST
    if not checkpoint.exists():
        raise RunFolderError(f"{run_dir}: no {BEST} or {LAST}; has the run finished an epoch?")
    return checkpoint


def config_from_dict(cls: type[C], values: dict[str, Any]) -> C:
    """A frozen config back from JSON values (lists become the tuples they were)."""
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in fields}
    )


@dataclasses.dataclass(frozen=True)
class RunSplit:
    train: frozenset[str]
    validation: frozenset[str]
    test: frozenset[str] | None  # None: the run was split before test works were recorded


def write_split(
    run_dir: Path,
    train_works: frozenset[str],
    val_works: frozenset[str],
    test_works: frozenset[str],
) -> None:
    """Write ``split.json``; a resumed run's must name the same works, or its test works might
    be works it trained on (the shards grew, or it was split before test works existed)."""
    path = run_dir / SPLIT_FILE
    if path.exists():
        found = read_split(run_dir)
        if found != RunSplit(train_works, val_works, test_works):
            raise RunConfigMismatchError(
                f"{path} splits other works than these shards give ({len(found.train)} train "
                f"works there, {len(train_works)} now, test works "
                f"{'unrecorded' if found.test is None else len(found.test)} there): "
                "use another --output"
            )
    document = {
        "train_works": sorted(train_works),
        "val_works": sorted(val_works),
        "test_works": sorted(test_works),
    }
    atomic_write_bytes(path, json.dumps(document, indent=2).encode())


def read_split(run_dir: Path | str) -> RunSplit:
    """The works of a run (a folder or URL) by use."""
    document = _read_json(run_dir, SPLIT_FILE)
    test = document.get("test_works")
    return RunSplit(
        frozenset(document["train_works"]),
        frozenset(document["val_works"]),
        None if test is None else frozenset(test),
    )


def read_train_works(run_dir: Path | str) -> frozenset[str]:
    """The works a run (a folder or URL) trained on (validation and test works excluded)."""
    return read_split(run_dir).train


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint, loaded without pickle's arbitrary code (``weights_only=True``)."""
    import torch  # here: the CLI reads this module's names before any check, torch after

    return torch.load(path, map_location="cpu", weights_only=True)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)

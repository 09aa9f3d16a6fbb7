"""The output folder: where each partition's files go, completion markers, lock and manifest.

A partition counts as done only when its marker exists and every file it lists has the
recorded size; the marker is written last, so a crash mid-partition means "redo it".
``OutputDir`` is a local folder; ``pipeline.io.object_store.ObjectOutputDir`` gives the same
methods for a prefix of an object store (``s3://bucket/prefix``), where the marker, written
last, is the commit.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import UserError
from pipeline.io.atomic import atomic_write_bytes

MANIFEST = "manifest.json"
PLAN = "plan.json"
# stems: --keep-stems; embeddings: LIVI-only extraction
_DATA_DIRS = ("tracks", "segments", "shards", "embeddings", "stems", "_complete")
EMBEDDINGS = "embeddings.parquet"  # LIVI-only extraction: every partition's, once complete
INPUT_CATALOG = "catalog.csv"  # --input DIR: the catalog made of the folder, for the next run
REPORT_FILE = "report.html"  # rebuilt by pipeline.report after every run
INPUT_SKIPPED = "input_skipped.csv"  # --input DIR: the files that are not audio, with why


class OutputDirError(UserError, RuntimeError):
    """The output folder cannot be used for this run; the message says why and what to do."""


def file_record(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def describe_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    a, b = _flatten(old), _flatten(new)
    return [
        f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
        for k in sorted(a.keys() | b.keys())
        if a.get(k) != b.get(k)
    ]


@dataclass(frozen=True)
class OutputDir:
    root: Path
    embeddings_only: bool = False  # LIVI-only extraction: tracks and embeddings, no shards

    @staticmethod
    def part_name(index: int) -> str:
        return f"part-{index:05d}"

    @property
    def location(self) -> str:
        """The folder or URL, as the user named it, for messages."""
        return str(self.root)

    def commit_file(self, rel: str, write: Callable[[Path], None]) -> dict[str, Any]:
        """``write(path)`` the file ``rel`` (the writers commit atomically); its record."""
        write(self.root / rel)
        return file_record(self.root / rel)

    @contextmanager
    def local_copy(self, rel: str) -> Iterator[Path]:
        """A local path holding the file ``rel``, for readers that need one."""
        yield self.root / rel

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink(missing_ok=True)

    # Every partition file's name, relative to the root: every writer and reader asks here.
    def tracks_rel(self, index: int) -> str:
        return f"tracks/{self.part_name(index)}.parquet"

    def segments_rel(self, index: int) -> str:
        return f"segments/{self.part_name(index)}.parquet"

    def shard_rel(self, index: int) -> str:
        return f"shards/{self.part_name(index)}.tar"

    def embeddings_rel(self, index: int) -> str:
        return f"embeddings/{self.part_name(index)}.parquet"

    def partition_files(self, index: int) -> list[str]:
        """The partition's data files, relative to the root."""
        if self.embeddings_only:
            return [self.tracks_rel(index), self.embeddings_rel(index)]
        return [self.tracks_rel(index), self.segments_rel(index), self.shard_rel(index)]

    def remove_partition(self, index: int) -> None:
        """Delete a partition that the plan no longer has: marker first, then its files."""
        self.marker_path(index).unlink(missing_ok=True)
        for rel in self.partition_files(index):
            (self.root / rel).unlink(missing_ok=True)

    def existing_partitions(self) -> list[int]:
        """Indices with any file or marker on disk, complete or not."""
        names = {p.name.split(".")[0] for d in _DATA_DIRS for p in (self.root / d).glob("part-*")}
        return sorted(int(n.removeprefix("part-")) for n in names)

    def read_plan(self) -> dict[str, Any] | None:
        path = self.root / PLAN
        return json.loads(path.read_text()) if path.is_file() else None

    def write_plan(self, plan: dict[str, Any]) -> None:
        atomic_write_bytes(self.root / PLAN, json.dumps(plan).encode())

    def marker_rel(self, index: int) -> str:
        return f"_complete/{self.part_name(index)}.json"

    def marker_path(self, index: int) -> Path:
        return self.root / self.marker_rel(index)

    def write_marker(self, index: int, marker: dict[str, Any]) -> None:
        atomic_write_bytes(self.marker_path(index), json.dumps(marker, indent=1).encode())

    def completed_marker(self, index: int) -> dict[str, Any] | None:
        """The partition's marker if it and all the files it lists are intact, else None."""
        path = self.marker_path(index)
        if not path.is_file():
            return None
        marker = json.loads(path.read_text())
        for rel, record in marker["files"].items():
            f = self.root / rel
            if not f.is_file() or f.stat().st_size != record["bytes"]:
                return None
        return marker

    @contextmanager
    def lock(self, run_id: str | None = None) -> Iterator[None]:
        """Refuse a second concurrent run on the same folder instead of corrupting it (an
        object store's lock also records ``run_id``; a local one dies with its process)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutputDirError(
                    f"{self.root}: another extraction is running on this folder; wait for it "
                    "or choose another --output"
                ) from None
            yield

    def remove_leftovers(self) -> int:
        """Delete temporary files a killed run left behind; call only while holding the lock."""
        leftovers = [f for d in _DATA_DIRS for f in (self.root / d).glob(".tmp-*")]
        for f in leftovers:
            f.unlink(missing_ok=True)
        return len(leftovers)

    def read_manifest(self) -> dict[str, Any] | None:
        path = self.root / MANIFEST
        return json.loads(path.read_text()) if path.is_file() else None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write_bytes(self.root / MANIFEST, json.dumps(manifest, indent=1).encode())

    def check_compatible(self, header: dict[str, Any], overwrite: bool) -> None:
        """Resume only outputs made by the same settings and models; ``overwrite`` clears them."""
        previous = self.read_manifest()
        if previous is None:
            return
        keys = ("output_config", "models", "schema_versions")
        old = {k: previous.get(k) for k in keys}
        new = json.loads(json.dumps({k: header.get(k) for k in keys}))  # tuples -> lists
        if old == new:
            return
        if overwrite:
            self.clear()
            return
        differences = "; ".join(describe_differences(old, new))
        raise OutputDirError(
            f"{self.location} holds outputs of different settings or models ({differences}). "
            "Use the same settings to resume, another --output, or --overwrite to replace them."
        )

    def clear(self) -> None:
        """Delete every output (for ``--overwrite``); logs stay."""
        for name in (*_DATA_DIRS, MANIFEST, PLAN, EMBEDDINGS):
            target = self.root / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)

"""Outputs on object storage: ``--output s3://bucket/prefix`` (or ``gs://``, ``abfs://``, any
fsspec URL), with the guarantees of a local folder and no rename.

Each file is written whole on local scratch by the same writers as a local run (so the bytes
are the same), then uploaded in one PUT (a multipart upload for large files): an object store
shows an object only once its upload completes, so no reader ever sees half of one. The
partition's completion marker is uploaded last and is the commit; resume trusts markers only,
as locally. A lock object holding the run id is taken with a conditional write
(``If-None-Match: *``) where the store offers one (S3, MinIO, moto), so two drivers cannot both
take it; a driver refreshes it while it runs, and a lock left by a killed driver is taken over
once its process is gone (same host) or it has not been refreshed for ``LOCK_STALE_S``.

Credentials come only from the store's usual places (environment, config files, instance
roles): nothing here takes or records one. The endpoint of an S3-compatible server comes from
``AWS_ENDPOINT_URL`` or the AWS config file, like any boto client's.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs

from pipeline.io.output_dir import (
    _DATA_DIRS,
    EMBEDDINGS,
    MANIFEST,
    PLAN,
    REPORT_FILE,
    OutputDir,
    OutputDirError,
    file_record,
)

log = logging.getLogger(__name__)

LOCK = "_lock.json"
LOCK_REFRESH_S = 30.0
LOCK_STALE_S = 300.0  # a lock not refreshed for this long belongs to a dead driver


def is_url(location: str | os.PathLike[str]) -> bool:
    """An fsspec URL other than a local ``file://`` one."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def join(location: str | os.PathLike[str], *names: str) -> str:
    """``location/name/...`` for a folder or a URL."""
    if not is_url(location):
        return str(Path(location).joinpath(*names))
    return "/".join([str(location).rstrip("/"), *names])


def output_dir_for(location: str | os.PathLike[str], embeddings_only: bool = False) -> OutputDir:
    """The output of ``--output``: a local folder, or a prefix of an object store."""
    location = str(location)
    if is_url(location):
        return ObjectOutputDir(
            PurePosixPath(location.split("://", 1)[1]),  # type: ignore[arg-type]
            embeddings_only,
            url=location.rstrip("/"),
        )
    return OutputDir(Path(location.removeprefix("file://")), embeddings_only)


def store_error(url: str, error: Exception) -> OutputDirError:
    """One line for what the store said: no bucket, bad credentials, no permission, no server."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    lowered = text.lower()
    bucket = url.split("://", 1)[0] + "://" + url.split("://", 1)[1].split("/", 1)[0]
    if isinstance(error, FileNotFoundError) and "bucket" in lowered:
        fix = f"no such bucket {bucket} ({text}); create it, or check --output"
    elif any(k in lowered for k in ("signature", "accesskeyid", "access key", "security token")):
        fix = (
            f"the store refused the credentials ({text}); check AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the instance role"
        )
    elif isinstance(error, PermissionError):
        fix = f"no permission to write there ({text}); use a prefix these credentials may write"
    else:
        fix = f"cannot use the store ({type(error).__name__}: {text}); check AWS_ENDPOINT_URL"
    return OutputDirError(f"--output {url}: {fix}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class ObjectOutputDir(OutputDir):
    """An output prefix on an object store. ``root`` is the prefix without the protocol and
    only names things: every read and write goes through ``fs``."""

    url: str = ""

    @property
    def fs(self) -> AbstractFileSystem:
        fs, _ = url_to_fs(self.url)  # fsspec caches one instance per store and settings
        return fs

    @property
    def base(self) -> str:
        return str(self.root)

    def key(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    @property
    def location(self) -> str:
        return self.url

    def _cat(self, rel: str) -> bytes | None:
        try:
            return self.fs.cat_file(self.key(rel))
        except FileNotFoundError:
            return None

    def _put_bytes(self, rel: str, data: bytes) -> None:
        self.fs.pipe_file(self.key(rel), data)

    # --- files -----------------------------------------------------------------------------

    def commit_file(self, rel: str, write: Any) -> dict[str, Any]:
        """Write on local scratch, upload whole (the object appears complete or not at all)."""
        with tempfile.TemporaryDirectory(prefix="pipeline-stage-") as scratch:
            local = Path(scratch) / PurePosixPath(rel).name
            write(local)
            self.fs.put_file(str(local), self.key(rel))
            return file_record(local)

    @contextmanager
    def local_copy(self, rel: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="pipeline-read-") as scratch:
            local = Path(scratch) / PurePosixPath(rel).name
            self.fs.get_file(self.key(rel), str(local))
            yield local

    def remove(self, rel: str) -> None:
        try:
            self.fs.rm_file(self.key(rel))
        except FileNotFoundError:
            pass

    def remove_partition(self, index: int) -> None:
        self.remove(self.marker_rel(index))
        for rel in self.partition_files(index):
            self.remove(rel)

    def existing_partitions(self) -> list[int]:
        """One listing per folder; it also fills the listing cache that ``completed_marker``'s
        size checks then read, so resuming 60,000 partitions costs a few hundred requests."""
        names: set[str] = set()
        for folder in _DATA_DIRS:
            try:
                entries = self.fs.ls(self.key(folder), detail=False)
            except FileNotFoundError:
                continue
            names.update(
                PurePosixPath(e).name.split(".")[0]
                for e in entries
                if PurePosixPath(e).name.startswith("part-")
            )
        return sorted(int(n.removeprefix("part-")) for n in names)

    def read_plan(self) -> dict[str, Any] | None:
        data = self._cat(PLAN)
        return None if data is None else json.loads(data)

    def write_plan(self, plan: dict[str, Any]) -> None:
        self._put_bytes(PLAN, json.dumps(plan).encode())

    def write_marker(self, index: int, marker: dict[str, Any]) -> None:
        self._put_bytes(self.marker_rel(index), json.dumps(marker, indent=1).encode())

    def completed_marker(self, index: int) -> dict[str, Any] | None:
        data = self._cat(self.marker_rel(index))
        if data is None:
            return None
        marker = json.loads(data)
        for rel, record in marker["files"].items():
            try:
                size = self.fs.info(self.key(rel))["size"]
            except FileNotFoundError:
                return None
            if size != record["bytes"]:
                return None
        return marker

    def read_manifest(self) -> dict[str, Any] | None:
        data = self._cat(MANIFEST)
        return None if data is None else json.loads(data)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self._put_bytes(MANIFEST, json.dumps(manifest, indent=1).encode())

    def remove_leftovers(self) -> int:
        return 0  # files are staged on local scratch, never under the prefix

    def clear(self) -> None:
        for name in (*_DATA_DIRS, MANIFEST, PLAN, EMBEDDINGS):
            try:
                self.fs.rm(self.key(name), recursive=True)
            except FileNotFoundError:
                pass

    # --- lock ------------------------------------------------------------------------------

    def _lock_document(self, run_id: str | None) -> bytes:
        return json.dumps(
            {
                "run_id": run_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "refreshed_at": _now(),
                "refreshed_unix": time.time(),
            }
        ).encode()

    def _take_lock(self, run_id: str | None) -> None:
        """Create the lock object only if none exists; take over a dead driver's lock."""
        for attempt in range(2):
            try:
                self.fs.pipe_file(self.key(LOCK), self._lock_document(run_id), mode="create")
                return
            except FileExistsError:
                pass
            except (TypeError, NotImplementedError, ValueError):
                # A store without conditional writes: check, then write (a narrow race that
                # two drivers started in the same second could both win; see the docs).
                if self._cat(LOCK) is None:
                    self._put_bytes(LOCK, self._lock_document(run_id))
                    return
            held = self._cat(LOCK)
            holder = json.loads(held) if held else None
            if attempt == 0 and (holder is None or self._is_stale(holder)):
                log.info("taking over the lock of a driver that is gone: %s", holder)
                self.remove(LOCK)
                continue
            assert holder is not None
            raise OutputDirError(
                f"{self.url}: another extraction (run {holder.get('run_id')} on "
                f"{holder.get('host')}, pid {holder.get('pid')}, alive at "
                f"{holder.get('refreshed_at')}) is running on this prefix; wait for it or "
                "choose another --output"
            )

    @staticmethod
    def _is_stale(holder: dict[str, Any]) -> bool:
        if holder.get("host") == socket.gethostname() and not _pid_alive(int(holder["pid"])):
            return True
        return time.time() - float(holder.get("refreshed_unix", 0)) > LOCK_STALE_S

    @contextmanager
    def lock(self, run_id: str | None = None) -> Iterator[None]:
        try:
            self.fs.invalidate_cache(self.base)
            self._take_lock(run_id)
        except OutputDirError:
            raise
        except OSError as e:  # s3fs raises OSError subclasses for what the store answers
            raise store_error(self.url, e) from None
        stop = threading.Event()

        def refresh() -> None:
            while not stop.wait(LOCK_REFRESH_S):
                try:
                    self._put_bytes(LOCK, self._lock_document(run_id))
                except OSError as e:
                    log.warning("could not refresh the lock %s: %s", self.key(LOCK), e)

        thread = threading.Thread(target=refresh, name="pipeline-lock", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.remove(LOCK)


def upload_log(log_file: Path, location: str) -> str:
    """Copy a run's log from local scratch to ``location/logs/``; its URL (the local file when
    the store refuses it, which the run's own error already says)."""
    target = join(location, "logs", log_file.name)
    try:
        fs, path = url_to_fs(target)
        fs.put_file(str(log_file), path)
    except OSError as e:
        log.warning("could not upload the log to %s: %s", target, e)
        return str(log_file)
    return target


def location(text: str) -> Path | str:
    """An argparse ``type``: a URL stays as it is (``Path`` would fold its ``//``), anything
    else is a local path."""
    return text if is_url(text) else Path(text)


@contextmanager
def staged(target: Path | str) -> Iterator[Path]:
    """A local path to write ``target`` at: itself, or for a URL a file on local scratch that
    is uploaded whole when the block ends without an error."""
    if not is_url(target):
        yield Path(target)
        return
    with tempfile.TemporaryDirectory(prefix="pipeline-stage-") as scratch:
        local = Path(scratch) / PurePosixPath(str(target)).name
        yield local
        fs, path = url_to_fs(str(target))
        try:
            fs.put_file(str(local), path)
        except OSError as e:
            raise store_error(str(target), e) from None


def with_suffix(location: Path | str, suffix: str) -> Path | str:
    """``location`` with its file name's suffix replaced, for a path or a URL."""
    if not is_url(location):
        return Path(location).with_suffix(suffix)
    parent, name = str(location).rsplit("/", 1)
    return f"{parent}/{PurePosixPath(name).with_suffix(suffix)}"


def parent_of(location: Path | str) -> Path | str:
    """The folder or prefix holding ``location``."""
    if not is_url(location):
        return Path(location).parent
    return str(location).rstrip("/").rsplit("/", 1)[0]


def _local_name(location: Path | str) -> str:
    """A scratch folder's name: the prefix's last part, so a report's title reads the same."""
    return PurePosixPath(str(location).split("://", 1)[-1].rstrip("/")).name or "output"


def _top_level_files(fs: AbstractFileSystem, base: str) -> dict[str, int]:
    """Name -> size of the objects directly under ``base`` (none when it does not exist)."""
    try:
        entries = fs.ls(base, detail=True)
    except FileNotFoundError:
        return {}
    return {
        PurePosixPath(e["name"]).name: int(e.get("size") or 0)
        for e in entries
        if e.get("type") == "file"
    }


@dataclass
class StagedFolder:
    """A folder written by a run: itself when local; for a URL a local copy on scratch whose
    new or changed top-level files ``sync`` uploads, each whole, with the ``commit`` files
    after all the others (the marker last)."""

    path: Path
    location: Path | str
    commit: Sequence[str] = ()
    _synced: dict[str, tuple[int, int]] = field(default_factory=dict)

    def _stamp(self, name: str) -> tuple[int, int]:
        stat = (self.path / name).stat()
        return stat.st_size, stat.st_mtime_ns

    def sync(self) -> list[str]:
        """Upload what changed since the last sync (nothing for a local folder); its names."""
        if not is_url(self.location):
            return []
        changed = [
            p.name
            for p in sorted(self.path.iterdir())
            if p.is_file() and self._synced.get(p.name) != self._stamp(p.name)
        ]
        order = list(self.commit)
        changed.sort(key=lambda n: order.index(n) + 1 if n in order else 0)  # stable: by name
        fs, base = url_to_fs(str(self.location))
        for name in changed:
            stamp = self._stamp(name)
            try:
                fs.put_file(str(self.path / name), f"{base}/{name}")
            except OSError as e:
                raise store_error(str(self.location), e) from None
            self._synced[name] = stamp
        return changed


@contextmanager
def staged_folder(
    location: Path | str,
    fetch: Callable[[str], bool] = lambda name: False,
    commit: Sequence[str] = (),
) -> Iterator[StagedFolder]:
    """The folder a run writes ``location`` through. For a URL: a scratch folder holding the
    top-level objects ``fetch`` picks (what a resumed run reads), synced once more when the
    block ends without an error; a local folder is written in place."""
    if not is_url(location):
        Path(location).mkdir(parents=True, exist_ok=True)
        yield StagedFolder(Path(location), location, commit)
        return
    with tempfile.TemporaryDirectory(prefix="pipeline-stage-") as scratch:
        local = Path(scratch) / _local_name(location)
        local.mkdir()
        folder = StagedFolder(local, str(location).rstrip("/"), commit)
        fs, base = url_to_fs(str(location))
        try:
            for name in _top_level_files(fs, base):
                if fetch(name):
                    fs.get_file(f"{base}/{name}", str(local / name))
                    folder._synced[name] = folder._stamp(name)
        except OSError as e:
            raise store_error(str(location), e) from None
        yield folder
        folder.sync()


@contextmanager
def fetched(location: Path | str, *choices: Sequence[str]) -> Iterator[Path]:
    """A local folder to read ``location`` from: itself, or for a URL a scratch copy of the
    first object present of each of ``choices`` (names in its top level)."""
    if not is_url(location):
        yield Path(location)
        return
    with tempfile.TemporaryDirectory(prefix="pipeline-read-") as scratch:
        local = Path(scratch) / _local_name(location)
        local.mkdir()
        fs, base = url_to_fs(str(location))
        present = _top_level_files(fs, base)
        for names in choices:
            for name in names:
                if name in present:
                    fs.get_file(f"{base}/{name}", str(local / name))
                    break
        yield local


@contextmanager
def report_copy(url: str) -> Iterator[Path]:
    """A local scratch copy of what a report reads at ``url`` (top-level JSON files, a run's
    ``last.pt``, an extraction's tables and markers, never the shards); the report written
    into it is uploaded when the block ends."""
    fs, base = url_to_fs(url)
    fs.invalidate_cache(base)
    with tempfile.TemporaryDirectory(prefix="pipeline-report-") as scratch:
        local = Path(scratch) / _local_name(url)
        local.mkdir()
        present = _top_level_files(fs, base)
        for name in present:
            if (name.endswith(".json") and name != LOCK) or name == "last.pt":  # its history
                fs.get_file(f"{base}/{name}", str(local / name))
        if MANIFEST in present:
            for name in ("tracks", "segments", "_complete"):
                if fs.exists(f"{base}/{name}"):
                    fs.get(f"{base}/{name}", str(local / name), recursive=True)
        yield local
        fs.put_file(str(local / REPORT_FILE), f"{base}/{REPORT_FILE}")


def exists_at(location: Path | str) -> bool:
    """Whether a file, folder or object (or a prefix holding some) is at a path or URL."""
    if not is_url(location):
        return Path(location).exists()
    fs, path = url_to_fs(str(location))
    return fs.exists(path)


def read_bytes_at(location: Path | str) -> bytes:
    """A file's or object's bytes."""
    if not is_url(location):
        return Path(location).read_bytes()
    fs, path = url_to_fs(str(location))
    return fs.cat_file(path)


def write_bytes_at(location: Path | str, data: bytes) -> None:
    """Write ``data`` whole at a path (atomically, folders made) or a URL (one PUT)."""
    if not is_url(location):
        from pipeline.io.atomic import atomic_write_bytes

        atomic_write_bytes(Path(location), data)
        return
    fs, path = url_to_fs(str(location))
    fs.pipe_file(path, data)


def list_files_at(location: Path | str) -> list[str]:
    """The names of the files directly in a folder or under a prefix, sorted."""
    if not is_url(location):
        folder = Path(location)
        return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    fs, base = url_to_fs(str(location))
    return sorted(_top_level_files(fs, base))

"""WebDataset shards: one tar per partition, one sample per segment.

Members are written in key order with fixed metadata (mtime 0, root owner), so identical
inputs give byte-identical shards. Reading goes through ``iter_samples`` (streaming, optionally
only some arrays) or ``index_shard`` (metadata and array locations, for random access later);
both load arrays without pickle and refuse member names that could escape a folder.

A shard is a local path or an fsspec URL (``s3://bucket/features/shards/part-00000.tar``):
a URL is read through the store's file object (ranged reads, a readahead buffer), never
downloaded whole first, and an ``ArrayRef`` of one loads its array with one ranged GET.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from pipeline.errors import UserError
from pipeline.io.atomic import atomic_path
from pipeline.io.object_store import is_url

Shard = Path | str  # a local file, or an fsspec URL


@contextmanager
def _open_tar(shard: Shard) -> Iterator[tarfile.TarFile]:
    """The shard as a tar file: a local file, or a store's object read as it goes."""
    if not is_url(shard):
        with tarfile.open(shard, "r:") as tar:
            yield tar
        return
    import fsspec

    with fsspec.open(str(shard), "rb") as f, tarfile.open(fileobj=f, mode="r:") as tar:
        yield tar


@dataclass(frozen=True)
class ShardSample:
    key: str
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]  # member suffix without ".npy" -> array


class NoShardsError(UserError, FileNotFoundError):
    """A folder that should hold shards holds none."""


class UnsafeShardError(ValueError):
    """A tar member name is absolute or climbs out with ``..``."""


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def write_shard(samples: list[ShardSample], target: Path) -> None:
    """Write ``samples`` as a tar shard, atomically."""
    with atomic_path(target) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for sample in samples:
            _add(tar, f"{sample.key}.json", json.dumps(sample.meta, sort_keys=True).encode())
            for suffix, array in sample.arrays.items():
                _add(tar, f"{sample.key}.{suffix}.npy", _npy_bytes(array))


def _split_name(name: str) -> tuple[str, str]:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise UnsafeShardError(f"unsafe tar member name {name!r}")
    base, _, suffix = path.name.partition(".")
    return str(path.parent / base), suffix


def _grouped(tar: tarfile.TarFile) -> Iterator[tuple[str, list[tuple[str, tarfile.TarInfo]]]]:
    """(key, [(suffix, member), ...]) per sample; members of one key must be adjacent."""
    key: str | None = None
    members: list[tuple[str, tarfile.TarInfo]] = []
    for member in tar:
        if not member.isfile():
            continue
        member_key, suffix = _split_name(member.name)
        if key is not None and member_key != key:
            yield key, members
            members = []
        key = member_key
        members.append((suffix, member))
    if key is not None:
        yield key, members


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    return tar.extractfile(member).read()  # type: ignore[union-attr]


def iter_samples(shard: Shard, arrays: frozenset[str] | None = None) -> Iterator[ShardSample]:
    """Samples of one shard in file order.

    ``arrays`` names the array members to load (e.g. ``{"decoder"}``); the others are skipped
    unread, which matters when the 1.5 MB of encoder states per sample are not needed.
    """
    with _open_tar(shard) as tar:
        for key, members in _grouped(tar):
            meta: dict[str, Any] = {}
            loaded: dict[str, np.ndarray] = {}
            for suffix, member in members:
                name = suffix.removesuffix(".npy")
                if suffix == "json":
                    meta = json.loads(_read(tar, member))
                elif suffix.endswith(".npy") and (arrays is None or name in arrays):
                    loaded[name] = np.load(io.BytesIO(_read(tar, member)), allow_pickle=False)
            yield ShardSample(key, meta, loaded)


def list_shards(folder: Shard) -> list[Shard]:
    """The shards of an extraction output (or of a bare folder of shards), in name order; of
    a URL prefix, their URLs."""
    if is_url(folder):
        return _list_store_shards(str(folder).rstrip("/"))
    folder = Path(folder)
    shards_dir = folder / "shards" if (folder / "shards").is_dir() else folder
    shards = sorted(shards_dir.glob("part-*.tar"))  # .tmp- leftovers do not match
    if not shards:
        raise NoShardsError(f"{shards_dir}: no part-*.tar shards; run `pipeline run extract`")
    return shards


def _list_store_shards(url: str) -> list[Shard]:
    from fsspec.core import url_to_fs

    fs, base = url_to_fs(url)
    shards_dir = f"{base}/shards" if fs.isdir(f"{base}/shards") else base
    shards = sorted(fs.glob(f"{shards_dir}/part-*.tar"))
    if not shards:
        raise NoShardsError(
            f"{url}: no part-*.tar shards under it; run `pipeline run extract --output {url}`"
        )
    return [fs.unstrip_protocol(s) for s in shards]


def iter_folder(folder: Shard, arrays: frozenset[str] | None = None) -> Iterator[ShardSample]:
    """Every sample of every shard of ``folder``, streaming, one shard open at a time."""
    for shard in list_shards(folder):
        yield from iter_samples(shard, arrays)


@dataclass(frozen=True)
class ArrayRef:
    """Where one ``.npy`` member's bytes lie in an uncompressed shard, for random access."""

    shard: Shard
    offset: int
    size: int
    shape: tuple[int, ...]

    def load(self) -> np.ndarray:
        if is_url(self.shard):  # one ranged GET
            from fsspec.core import url_to_fs

            fs, path = url_to_fs(str(self.shard))
            data = fs.cat_file(path, start=self.offset, end=self.offset + self.size)
        else:
            with open(self.shard, "rb") as f:
                f.seek(self.offset)
                data = f.read(self.size)
        return np.load(io.BytesIO(data), allow_pickle=False)


def _npy_shape(tar: tarfile.TarFile, member: tarfile.TarInfo) -> tuple[int, ...]:
    """The array's shape from its .npy header, without reading the data."""
    f = tar.extractfile(member)
    version = np.lib.format.read_magic(f)  # type: ignore[arg-type]
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _, _ = read_header(f)  # type: ignore[arg-type]
    return tuple(shape)


def index_shard(shard: Shard) -> Iterator[tuple[str, dict[str, Any], dict[str, ArrayRef]]]:
    """(key, json meta, array name -> ArrayRef) per sample; reads json and .npy headers only."""
    where = shard if is_url(shard) else Path(shard)
    with _open_tar(shard) as tar:
        for key, members in _grouped(tar):
            meta: dict[str, Any] = {}
            refs: dict[str, ArrayRef] = {}
            for suffix, member in members:
                if suffix == "json":
                    meta = json.loads(_read(tar, member))
                elif suffix.endswith(".npy"):
                    refs[suffix.removesuffix(".npy")] = ArrayRef(
                        where, member.offset_data, member.size, _npy_shape(tar, member)
                    )
            yield key, meta, refs

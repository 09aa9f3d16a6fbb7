"""WebDataset shards: one tar per partition, one sample per segment.

Members are written in key order with fixed metadata (mtime 0, root owner), so identical
inputs give byte-identical shards. Reading goes through ``iter_samples``, which loads arrays
without pickle and refuses member names that could escape a folder.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from pipeline.io.atomic import atomic_path


@dataclass(frozen=True)
class ShardSample:
    key: str
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]  # member suffix without ".npy" -> array


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


def iter_samples(shard: Path) -> Iterator[ShardSample]:
    """Samples of one shard in file order; members of one key must be adjacent."""
    key: str | None = None
    meta: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    with tarfile.open(shard, "r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            member_key, suffix = _split_name(member.name)
            if key is not None and member_key != key:
                yield ShardSample(key, meta, arrays)
                meta, arrays = {}, {}
            key = member_key
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            if suffix == "json":
                meta = json.loads(data)
            elif suffix.endswith(".npy"):
                arrays[suffix.removesuffix(".npy")] = np.load(io.BytesIO(data), allow_pickle=False)
    if key is not None:
        yield ShardSample(key, meta, arrays)

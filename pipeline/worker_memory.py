"""How a worker process allocates: glibc settings at its start, and freed pages handed back
after each Whisper task.

Whisper's encoder allocates its attention scores (over 500 MB for a batch of 8 windows) again
in every layer, from CTranslate2's own threads, whose arenas cannot hold blocks that large:
each was mapped, faulted in and unmapped anew, a fifth of a worker's CPU time in the kernel.
One arena that keeps freed blocks for reuse removes that; handing the freed pages back once
per task keeps a worker's memory from carrying each task's high-water mark and fragments into
the next (docs/lyrics-transcription.md).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import dask

# A LocalCluster's workers get these; the Docker images' Dask config (docker/dask.yaml) gives
# them to remote workers (a test keeps the two equal).
WORKER_MALLOC = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_THRESHOLD_": str(2 << 30),
    "MALLOC_TRIM_THRESHOLD_": str(2 << 30),
}

Result = TypeVar("Result")


def worker_malloc_environ() -> dict[str, Any]:
    """Dask's worker environment with ``WORKER_MALLOC`` in place of its
    ``MALLOC_TRIM_THRESHOLD_`` (which, set at all, stops glibc's adaptive thresholds: every
    freed block over 128 KiB was unmapped)."""
    environ = dask.config.get("distributed.nanny.pre-spawn-environ")
    kept = {key: value for key, value in environ.items() if not key.startswith("MALLOC_")}
    return kept | WORKER_MALLOC


def release_freed_memory() -> None:
    """Return the pages of every freed block to the kernel (glibc's ``malloc_trim``); a no-op
    where the C library is not glibc."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def then_release(task: Callable[..., Result]) -> Callable[..., Result]:
    """``task``, handing freed pages back once it returns or raises."""

    @functools.wraps(task)
    def released(*args: Any, **kwargs: Any) -> Result:
        try:
            return task(*args, **kwargs)
        finally:
            release_freed_memory()

    return released

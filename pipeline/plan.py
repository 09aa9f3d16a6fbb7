"""Which catalog tracks go to which partition, stable across re-runs and catalog edits.

The first run cuts the catalog into consecutive partitions and saves that plan. A later run
keeps every unchanged track in its planned partition, drops tracks that left the catalog or
changed, and appends new partitions for new and changed tracks. A track counts as changed
when its catalog row, or its file's size or modification time, differ (no content hashing:
that would read every file of a million-track catalog before any work starts).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection
from typing import Any

import fsspec

from pipeline.io.protocols import forbidden_protocol
from pipeline.records import CatalogEntry

Plan = dict[int, list[CatalogEntry]]


def _file_state(audio_path: str, allow_protocols: Collection[str]) -> list[Any]:
    if forbidden_protocol(audio_path, allow_protocols):  # never asked: decode rejects the track
        return ["protocol_not_allowed"]
    try:
        if "://" in audio_path:
            info = fsspec.core.url_to_fs(audio_path)[0].info(audio_path)
            return [info.get("size"), str(info.get("mtime") or info.get("LastModified") or "")]
        st = os.stat(audio_path)
    except OSError:
        return ["unreadable"]
    return [st.st_size, st.st_mtime_ns]


def track_fingerprint(entry: CatalogEntry, allow_protocols: Collection[str] = ()) -> str:
    row = [entry.track_id, entry.audio_path, entry.work_id, entry.title, entry.artist]
    blob = json.dumps([*row, entry.language, *_file_state(entry.audio_path, allow_protocols)])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_plan(
    entries: list[CatalogEntry],
    fingerprints: dict[str, str],
    previous: dict[str, Any] | None,
    size: int,
) -> Plan:
    """Partition index -> entries; ``previous`` is the saved plan of an earlier run."""
    by_id = {e.track_id: e for e in entries}
    plan: Plan = {}
    placed: set[str] = set()
    for part in (previous or {}).get("partitions", []):
        kept = [tid for tid, fp in part["tracks"] if fingerprints.get(tid) == fp]
        if kept:
            plan[part["index"]] = [by_id[tid] for tid in kept]
            placed.update(kept)
    next_index = max((p["index"] for p in (previous or {}).get("partitions", [])), default=-1) + 1
    remaining = [e for e in entries if e.track_id not in placed]
    for start in range(0, len(remaining), size):
        plan[next_index] = remaining[start : start + size]
        next_index += 1
    return plan


def plan_document(plan: Plan, fingerprints: dict[str, str]) -> dict[str, Any]:
    return {
        "partitions": [
            {"index": i, "tracks": [[e.track_id, fingerprints[e.track_id]] for e in plan[i]]}
            for i in sorted(plan)
        ]
    }

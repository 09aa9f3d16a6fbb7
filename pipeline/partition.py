"""Commit one catalog partition: its tracks rows, segments rows and shard, then its marker."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np

from pipeline.io.embeddings import read_embeddings, write_embeddings
from pipeline.io.output_dir import EMBEDDINGS, OutputDir
from pipeline.io.parquet import read_table, write_table
from pipeline.io.webdataset import ShardSample, iter_samples, write_shard
from pipeline.records import CatalogEntry, Rejected, SegmentFeatures, TrackEmbedding, TrackFeatures


def printable(text: str | None) -> str | None:
    """Valid UTF-8 for Parquet: bytes that were not UTF-8 in the catalog become \\xNN."""
    if text is None:
        return None
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _catalog_columns(entry: CatalogEntry) -> dict[str, Any]:
    return {
        "track_id": printable(entry.track_id),
        "audio_path": printable(entry.audio_path),
        "catalog_line": entry.line,
        "work_id": printable(entry.work_id),
        "title": printable(entry.title),
        "artist": printable(entry.artist),
        "catalog_language": printable(entry.language),
    }


def _segment_row(
    entry: CatalogEntry, seg: SegmentFeatures, shard: str | None, key: str | None
) -> dict[str, Any]:
    t = seg.transcript
    embedding = seg.text_embedding
    return {
        "track_id": printable(entry.track_id),
        "segment_index": seg.index,
        "start_s": seg.start_s,
        "end_s": seg.end_s,
        "transcript": t.text,
        "clean_transcript": seg.clean_text,
        "language": t.language,
        "language_probability": t.language_probability,
        "detected_language": t.detected_language,
        "detected_language_probability": t.detected_language_probability,
        "avg_logprob": t.avg_logprob,
        "no_speech_prob": t.no_speech_prob,
        "compression_ratio": t.compression_ratio,
        "temperature": t.temperature,
        "tokens": list(t.tokens),
        "token_agreement": seg.token_agreement,
        "text_embedding": None if embedding is None else embedding.tolist(),
        "singing": seg.singing,
        "shard": shard,
        "shard_key": key,
    }


def _track_row(
    entry: CatalogEntry, result: TrackFeatures | TrackEmbedding | Rejected
) -> dict[str, Any]:
    row = _catalog_columns(entry)
    if isinstance(result, Rejected):
        return row | {
            "status": "rejected",
            "stage": result.stage,
            "reason": result.reason,
            "detail": printable(result.detail),
            "segment_count": 0,
        }
    info = result.info
    row |= {
        "status": "ok",
        "duration_s": info.duration_s,
        "truncated": info.truncated,
        "mean_vocalness": info.mean_vocalness,
    }
    if isinstance(result, TrackEmbedding):  # no transcript: no language, no judgement
        return row | {"detail": printable(info.note) or None, "segment_count": result.segment_count}
    detail = "; ".join(d for d in (info.note, result.no_singing) if d)
    return row | {
        "reason": None if result.no_singing is None else "no_singing",
        "detail": printable(detail) or None,
        "language": result.language,
        "detected_language": result.detected_language,
        "segment_count": len(result.segments),
        "sung_segment_count": sum(s.sung for s in result.segments),
    }


def keeps_encoder_states(track_id: str, share: float) -> bool:
    """Whether a track is in the ``encoder_states_share`` of tracks (by a hash of its id)."""
    if share >= 1.0:
        return True
    digest = hashlib.sha256(track_id.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def write_partition(
    index: int,
    entries: list[CatalogEntry],
    results: list[TrackFeatures | Rejected],
    out: OutputDir,
    encoder_states_share: float = 1.0,
) -> dict[str, Any]:
    """Write the partition's segments and shard, then its tracks table and its marker (each
    file atomically); return the marker. Tracks outside ``encoder_states_share`` get shard
    samples without encoder states (a window kept for the detector keeps them)."""
    part = out.part_name(index)
    track_rows, segment_rows, samples = [], [], []
    for entry, result in zip(entries, results, strict=True):
        track_rows.append(_track_row(entry, result))
        if isinstance(result, Rejected):
            continue
        for seg in result.segments:
            # Only the detector trains on the windows judged unsung of a sung track.
            detector_only = not (seg.sung or result.no_singing)
            if detector_only and not result.unsung_samples:  # evidence only: no features
                segment_rows.append(_segment_row(entry, seg, None, None))
                continue
            key = f"{part}/{len(samples):06d}"
            segment_rows.append(_segment_row(entry, seg, out.shard_rel(index), key))
            arrays = {"encoder": seg.encoder_states, "decoder": seg.decoder_states}
            if not (detector_only or keeps_encoder_states(entry.track_id, encoder_states_share)):
                del arrays["encoder"]
            if seg.text_embedding is not None:
                arrays["text"] = seg.text_embedding
            meta = {
                "track_id": printable(entry.track_id),
                "segment_index": seg.index,
                "work_id": printable(entry.work_id),
                "start_s": seg.start_s,
                "end_s": seg.end_s,
                "language": seg.transcript.language,
                "transcript": seg.transcript.text,
                "singing": seg.singing,
            }
            if detector_only:
                meta["detector_only"] = True
            samples.append(ShardSample(key, meta, arrays))
    files = {
        out.segments_rel(index): partial(write_table, segment_rows, "segments"),
        out.shard_rel(index): partial(write_shard, samples),
    }
    records = {rel: out.commit_file(rel, write) for rel, write in files.items()}
    ids = [e.track_id for e in entries]
    return _commit(index, ids, track_rows, len(segment_rows), out, records)


def write_groups(
    write: Callable[[int, list[CatalogEntry], list[Any], OutputDir], dict[str, Any]],
    index: int,
    entries: list[CatalogEntry],
    groups: list[list[Any]],
    out: OutputDir,
) -> dict[str, Any]:
    """``write`` the partition, its results gathered from the Whisper tasks' groups of tracks."""
    return write(index, entries, [result for group in groups for result in group], out)


def write_embedding_partition(
    index: int,
    entries: list[CatalogEntry],
    results: list[TrackEmbedding | Rejected],
    out: OutputDir,
) -> dict[str, Any]:
    """LIVI-only extraction: the partition's tracks rows and embeddings file, then its marker."""
    track_rows = [_track_row(e, r) for e, r in zip(entries, results, strict=True)]
    embeddings = {
        printable(e.track_id): r.embedding
        for e, r in zip(entries, results, strict=True)
        if isinstance(r, TrackEmbedding)
    }
    rel = out.embeddings_rel(index)
    records = {rel: out.commit_file(rel, partial(write_embeddings, embeddings, list(embeddings)))}
    windows = sum(r.segment_count for r in results if isinstance(r, TrackEmbedding))
    return _commit(index, [e.track_id for e in entries], track_rows, windows, out, records)


def prune_partition(index: int, keep_track_ids: list[str], out: OutputDir) -> dict[str, Any]:
    """Rewrite a complete partition without the tracks that left or changed in the catalog."""
    keep = {printable(t) for t in keep_track_ids}
    with out.local_copy(out.tracks_rel(index)) as path:
        tracks = [r for r in read_table(path, "tracks").to_pylist() if r["track_id"] in keep]
    if out.embeddings_only:
        rel = out.embeddings_rel(index)
        with out.local_copy(rel) as path:
            ids, vectors = read_embeddings(path, allow_empty=True)
        kept = {t: v for t, v in zip(ids, vectors, strict=True) if t in keep}
        records = {rel: out.commit_file(rel, partial(write_embeddings, kept, list(kept)))}
        windows = sum(r["segment_count"] for r in tracks if r["status"] == "ok")
        return _commit(index, keep_track_ids, tracks, windows, out, records)
    with out.local_copy(out.segments_rel(index)) as path:
        segments = [r for r in read_table(path, "segments").to_pylist() if r["track_id"] in keep]
    with out.local_copy(out.shard_rel(index)) as path:
        samples = [s for s in iter_samples(path) if s.meta["track_id"] in keep]
    files = {
        out.segments_rel(index): partial(write_table, segments, "segments"),
        out.shard_rel(index): partial(write_shard, samples),
    }
    records = {rel: out.commit_file(rel, write) for rel, write in files.items()}
    return _commit(index, keep_track_ids, tracks, len(segments), out, records)


def merge_embeddings(out: OutputDir, indices: list[int]) -> None:
    """One embeddings file of every partition's, in partition order: what ``run evaluate``,
    ``run match`` and ``search`` read."""
    embeddings: dict[str, np.ndarray] = {}
    for index in indices:
        with out.local_copy(out.embeddings_rel(index)) as path:
            ids, vectors = read_embeddings(path, allow_empty=True)
        embeddings.update(zip(ids, vectors, strict=True))
    out.commit_file(EMBEDDINGS, partial(write_embeddings, embeddings, list(embeddings)))


def _commit(
    index: int,
    track_ids: list[str],  # as in the catalog, which may hold non-UTF-8 bytes
    track_rows: list[dict[str, Any]],
    segments: int,  # rows of the segments table; windows embedded in LIVI-only extraction
    out: OutputDir,
    records: dict[str, dict[str, Any]],  # the partition's other files, already committed
) -> dict[str, Any]:
    """The tracks table, then the marker: the partition's other files are already written."""
    tracks_rel = out.tracks_rel(index)
    records[tracks_rel] = out.commit_file(tracks_rel, partial(write_table, track_rows, "tracks"))
    ok = [r for r in track_rows if r["status"] == "ok"]
    reasons = Counter(r["reason"] for r in track_rows if r["status"] != "ok")
    flags = Counter(r["reason"] for r in ok if r.get("reason"))
    marker = {
        "partition": index,
        "tracks": len(track_rows),
        "ok": len(ok),
        "rejected": dict(sorted(reasons.items())),
        "rejected_tracks": {r["track_id"]: r["reason"] for r in track_rows if r["status"] != "ok"},
        "flagged": dict(sorted(flags.items())),
        "segments": segments,
        "audio_s": sum(r["duration_s"] for r in ok),
        "track_ids": track_ids,
        "files": {rel: records[rel] for rel in out.partition_files(index)},
        "completed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),  # throughput
    }
    out.write_marker(index, marker)
    return marker

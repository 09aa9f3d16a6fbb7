"""Commit one catalog partition: its tracks rows, segments rows and shard, then its marker."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pipeline.io.output_dir import OutputDir, file_record
from pipeline.io.parquet import write_table
from pipeline.io.webdataset import ShardSample, write_shard
from pipeline.records import CatalogEntry, Rejected, TrackFeatures


def _catalog_columns(entry: CatalogEntry) -> dict[str, Any]:
    return {
        "track_id": entry.track_id,
        "audio_path": entry.audio_path,
        "catalog_line": entry.line,
        "work_id": entry.work_id,
        "title": entry.title,
        "artist": entry.artist,
        "catalog_language": entry.language,
    }


def _track_row(entry: CatalogEntry, result: TrackFeatures | Rejected) -> dict[str, Any]:
    row = _catalog_columns(entry)
    if isinstance(result, Rejected):
        return row | {
            "status": "rejected",
            "stage": result.stage,
            "reason": result.reason,
            "detail": result.detail,
            "segment_count": 0,
        }
    info = result.info
    return row | {
        "status": "ok",
        "detail": info.note or None,
        "duration_s": info.duration_s,
        "truncated": info.truncated,
        "mean_vocalness": info.mean_vocalness,
        "language": result.language,
        "segment_count": len(result.segments),
    }


def write_partition(
    index: int,
    entries: list[CatalogEntry],
    results: list[TrackFeatures | Rejected],
    out: OutputDir,
) -> dict[str, Any]:
    """Write the partition's three files atomically, then its marker; return the marker."""
    part = out.part_name(index)
    shard_rel = f"shards/{part}.tar"
    track_rows, segment_rows, samples = [], [], []
    reasons: Counter[str] = Counter()
    audio_s = 0.0
    for entry, result in zip(entries, results, strict=True):
        track_rows.append(_track_row(entry, result))
        if isinstance(result, Rejected):
            reasons[result.reason] += 1
            continue
        audio_s += result.info.duration_s
        for seg in result.segments:
            key = f"{part}/{len(samples):06d}"
            t = seg.transcript
            segment_rows.append(
                {
                    "track_id": entry.track_id,
                    "segment_index": seg.index,
                    "start_s": seg.start_s,
                    "end_s": seg.end_s,
                    "transcript": t.text,
                    "clean_transcript": seg.clean_text,
                    "language": t.language,
                    "language_probability": t.language_probability,
                    "avg_logprob": t.avg_logprob,
                    "no_speech_prob": t.no_speech_prob,
                    "compression_ratio": t.compression_ratio,
                    "temperature": t.temperature,
                    "tokens": list(t.tokens),
                    "token_agreement": seg.token_agreement,
                    "text_embedding": None
                    if seg.text_embedding is None
                    else seg.text_embedding.tolist(),
                    "shard": shard_rel,
                    "shard_key": key,
                }
            )
            arrays = {"encoder": seg.encoder_states, "decoder": seg.decoder_states}
            if seg.text_embedding is not None:
                arrays["text"] = seg.text_embedding
            meta = {
                "track_id": entry.track_id,
                "segment_index": seg.index,
                "work_id": entry.work_id,
                "start_s": seg.start_s,
                "end_s": seg.end_s,
                "language": t.language,
                "transcript": t.text,
            }
            samples.append(ShardSample(key, meta, arrays))
    write_table(track_rows, "tracks", out.tracks_path(index))
    write_table(segment_rows, "segments", out.segments_path(index))
    write_shard(samples, out.shard_path(index))
    files = {
        f"tracks/{part}.parquet": out.tracks_path(index),
        f"segments/{part}.parquet": out.segments_path(index),
        shard_rel: out.shard_path(index),
    }
    marker = {
        "partition": index,
        "tracks": len(track_rows),
        "ok": len(track_rows) - sum(reasons.values()),
        "rejected": dict(sorted(reasons.items())),
        "segments": len(segment_rows),
        "audio_s": audio_s,
        "track_ids": [e.track_id for e in entries],
        "files": {rel: file_record(path) for rel, path in files.items()},
    }
    out.write_marker(index, marker)
    return marker

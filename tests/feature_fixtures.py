"""Tiny extraction outputs (shards and tracks table) written through the real writers.

The arrays are small and random, with a per-work pattern so that versions of one work are
alike and a model has something to learn in a few steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.io.parquet import read_table, write_table
from pipeline.io.webdataset import ShardSample, write_shard


def write_tiny_features(
    root: Path,
    works: int = 4,
    versions: int = 3,
    segments: int = 2,
    frames: int = 16,
    width: int = 8,
    text_dim: int = 6,
    tokens: int = 12,
    seed: int = 0,
    without_text: frozenset[str] = frozenset(),
    poison: float | None = None,
) -> Path:
    """A features folder: one shard per work, a tracks table; returns ``root``.

    Track ``{work}-{version}`` ids, e.g. ``w0-1``. Segments of ``without_text`` tracks have no
    text target; ``poison`` replaces every encoder state (e.g. NaN, as a corrupt shard).
    """
    rng = np.random.default_rng(seed)
    tracks = []
    for w in range(works):
        encoder_pattern = rng.standard_normal((frames, width))
        decoder_pattern = rng.standard_normal((tokens, width))
        text_pattern = rng.standard_normal(text_dim)
        samples = []
        for v in range(versions):
            track_id = f"w{w}-{v}"
            for s in range(segments):
                encoder = encoder_pattern + 0.3 * rng.standard_normal((frames, width))
                if poison is not None:
                    encoder[:] = poison
                text = text_pattern + 0.3 * rng.standard_normal(text_dim)
                arrays = {
                    "encoder": encoder.astype(np.float16),
                    "decoder": (
                        decoder_pattern + 0.3 * rng.standard_normal((tokens, width))
                    ).astype(np.float16),
                }
                if track_id not in without_text:
                    arrays["text"] = (text / np.linalg.norm(text)).astype(np.float32)
                meta = {
                    "track_id": track_id,
                    "segment_index": s,
                    "work_id": f"w{w}",
                    "transcript": f"song {w} sings line {s} of its lyrics",
                }
                samples.append(ShardSample(f"part-{w:05d}/{len(samples):06d}", meta, arrays))
            tracks.append(
                {
                    "track_id": track_id,
                    "status": "ok",
                    "audio_path": f"/audio/{track_id}.wav",
                    "catalog_line": len(tracks) + 2,
                    "work_id": f"w{w}",
                    "segment_count": segments,
                }
            )
        write_shard(samples, root / "shards" / f"part-{w:05d}.tar")
    tracks.append(
        {
            "track_id": "rejected",
            "status": "rejected",
            "reason": "silent",
            "audio_path": "/audio/rejected.wav",
            "catalog_line": len(tracks) + 2,
            "segment_count": 0,
        }
    )
    write_table(tracks, "tracks", root / "tracks" / "part-00000.parquet")
    return root


def write_catalog(features: Path, target: Path) -> Path:
    """A catalog CSV naming the tracks and works of a tiny features folder."""
    rows = read_table(features / "tracks", "tracks").to_pylist()
    lines = ["track_id,audio_path,work_id"]
    lines += [f"{r['track_id']},{r['audio_path']},{r['work_id'] or ''}" for r in rows]
    target.write_text("\n".join(lines) + "\n")
    return target

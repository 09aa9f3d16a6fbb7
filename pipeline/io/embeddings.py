"""Embeddings files: one L2-normalised vector per track, in Parquet (``schemas/embeddings.json``).

WEALY files may also carry each track's window embeddings, flattened, for max-over-window-pair
scoring; other files leave that column null.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import UserError
from pipeline.io.object_store import is_url
from pipeline.io.parquet import read_table, write_column_batches


class EmbeddingsFileError(UserError, ValueError):
    """An embeddings file that is empty or lacks what was asked of it."""


def write_embeddings(
    embeddings: dict[str, np.ndarray],
    track_ids: list[str],
    target: Path,
    windows: dict[str, np.ndarray] | None = None,
) -> None:
    """The Parquet file of ``track_ids`` that have an embedding, in that order.

    Columnar, never a Python float per value: a million tracks take seconds, not an hour."""
    windows = windows or {}
    kept = [t for t in track_ids if t in embeddings]
    flat = [np.asarray(embeddings[t], dtype=np.float32).ravel() for t in kept]
    offsets = np.concatenate([[0], np.cumsum([len(f) for f in flat], dtype=np.int64)])
    values = np.concatenate(flat) if flat else np.empty(0, dtype=np.float32)
    columns = {
        "track_id": kept,
        "embedding": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values)),
        "windows": pa.array(
            [windows[t].ravel().astype(np.float32) if t in windows else None for t in kept],
            pa.list_(pa.float32()),
        ),
    }
    write_column_batches([columns], "embeddings", target)


def _read(path: Path | str) -> pa.Table:
    filesystem = None
    if is_url(path):
        from fsspec.core import url_to_fs

        filesystem, where = url_to_fs(str(path))
        found = filesystem.isfile(where)
    else:
        where, found = str(path), Path(path).is_file()
    if not found:
        raise EmbeddingsFileError(
            f"{path}: no such embeddings file; make one with `pipeline run embed`"
        )
    try:
        columns = pq.read_schema(where, filesystem=filesystem).names
    except pa.ArrowInvalid as e:
        raise EmbeddingsFileError(
            f"{path}: not a Parquet file ({e}); make one with `pipeline run embed`"
        ) from None
    if not {"track_id", "embedding"} <= set(columns):
        raise EmbeddingsFileError(
            f"{path}: not an embeddings file (columns {', '.join(columns)}); "
            "make one with `pipeline run embed`"
        )
    return read_table(path, "embeddings")


def read_embeddings(path: Path | str, allow_empty: bool = False) -> tuple[list[str], np.ndarray]:
    """(track ids, (n, e) float32 embeddings) of an embeddings file. ``allow_empty``: a LIVI-only
    extraction's partition file, which holds none when every track of it was rejected."""
    table = _read(path)
    ids = table.column("track_id").to_pylist()
    if not ids:
        if allow_empty:
            return [], np.zeros((0, 0), np.float32)
        raise EmbeddingsFileError(f"{path}: no embeddings")
    column = table.column("embedding").combine_chunks()  # columnar: a million rows in seconds
    widths = np.unique(pc.list_value_length(column).to_numpy())
    if len(widths) != 1:
        raise EmbeddingsFileError(
            f"{path}: embeddings of {len(widths)} different widths ({', '.join(map(str, widths))});"
            " embed every track with one model"
        )
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return ids, flat.astype(np.float32, copy=False).reshape(len(ids), int(widths[0]))


def read_windows(path: Path | str) -> list[np.ndarray]:
    """Per track, in file order, its (w, e) window embeddings."""
    table = _read(path)
    out = []
    for embedding, flat in zip(
        table.column("embedding").to_pylist(), table.column("windows").to_pylist(), strict=True
    ):
        if flat is None:
            raise EmbeddingsFileError(
                f"{path} has no window embeddings: embed a WEALY run with --keep-windows"
            )
        out.append(np.array(flat, dtype=np.float32).reshape(-1, len(embedding)))
    return out

"""Parquet files of the pipeline's tables, with explicit, versioned schemas."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.io.atomic import atomic_path
from pipeline.io.object_store import is_url
from pipeline.io.schemas import check_version, table_schema


def write_table(rows: list[dict[str, Any]], name: str, target: Path) -> None:
    """Write ``rows`` as one Parquet file of table ``name``, atomically."""
    table = pa.Table.from_pylist(rows, schema=table_schema(name))
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_column_batches(batches: Iterable[Mapping[str, Any]], name: str, target: Path) -> int:
    """Write column batches (name -> array) as one Parquet file of table ``name``, atomically,
    one row group per batch: a table of millions of rows never sits in memory whole.

    Returns the number of rows written."""
    schema = table_schema(name)
    rows = 0
    with atomic_path(target) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for batch in batches:
            table = pa.Table.from_pydict(dict(batch), schema=schema)
            writer.write_table(table)
            rows += table.num_rows
    return rows


def _store_files(url: str) -> tuple[Any, list[str]]:
    """(filesystem, paths) of a Parquet object or of a prefix of part objects."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(url.rstrip("/"))
    return fs, sorted(fs.glob(f"{path}/part-*.parquet")) if fs.isdir(path) else [path]


def read_table(path: Path | str, name: str, columns: list[str] | None = None) -> pa.Table:
    """Read a part file or a folder of parts (``.tmp-`` leftovers ignored), checking the version;
    ``columns`` reads only those (a report needs no embeddings). A URL is read through its
    store (ranged reads of the columns asked for)."""
    filesystem = None
    if is_url(path):
        filesystem, files = _store_files(str(path))
    else:
        path = Path(path)
        files = sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]
    schema = table_schema(name)  # a newer minor version may add columns: keep ours
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
    if not files:
        return schema.empty_table()
    tables = []
    for f in files:
        part = pq.ParquetFile(f, filesystem=filesystem)
        found = (part.schema_arrow.metadata or {}).get(b"schema_version")
        check_version(name, found.decode() if found else None, str(f))
        present = [c for c in schema.names if c in part.schema_arrow.names]
        table = part.read(columns=present)
        for field in schema:  # a column added by a later minor version: null in older parts
            if field.name not in present:
                table = table.append_column(field, pa.nulls(table.num_rows, field.type))
        tables.append(table.select(schema.names).cast(schema))
    return pa.concat_tables(tables)

"""The versioned table schemas in ``schemas/``, as pyarrow schemas.

Writers use these and never infer; readers refuse a major version they do not know.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.errors import UserError

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
_TYPES = {
    "string": pa.string(),
    "bool": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "list<int32>": pa.list_(pa.int32()),
    "list<float32>": pa.list_(pa.float32()),
}


class SchemaVersionError(UserError, ValueError):
    """A file was written with a schema major version this code does not read."""


@functools.cache
def schema_document(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text())


def schema_version(name: str) -> str:
    return schema_document(name)["version"]


@functools.cache
def table_schema(name: str) -> pa.Schema:
    doc = schema_document(name)
    fields = [pa.field(f["name"], _TYPES[f["type"]], nullable=f["nullable"]) for f in doc["fields"]]
    return pa.schema(fields, metadata={"schema_name": name, "schema_version": doc["version"]})


def check_version(name: str, found: str | None, where: str) -> None:
    expected = schema_version(name)
    if found is None or found.split(".")[0] != expected.split(".")[0]:
        raise SchemaVersionError(
            f"{where}: {name} schema version {found} is not readable by this pipeline "
            f"(reads {expected.split('.')[0]}.x); re-extract, or use a matching pipeline release"
        )

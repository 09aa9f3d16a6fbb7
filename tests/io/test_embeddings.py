from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.io.embeddings import (
    EmbeddingsFileError,
    read_embeddings,
    read_windows,
    write_embeddings,
)

pytestmark = pytest.mark.timeout(60)  # each of these takes seconds


def test_write_then_read_with_and_without_windows(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = {t: rng.standard_normal(4).astype(np.float32) for t in ("b", "a", "c")}
    windows = {"a": rng.standard_normal((3, 4)).astype(np.float32)}
    write_embeddings(vectors, ["a", "b", "missing", "c"], tmp_path / "e.parquet", windows)
    ids, read = read_embeddings(tmp_path / "e.parquet")
    assert ids == ["a", "b", "c"]  # the order asked for; ids without a vector are left out
    np.testing.assert_array_equal(read, np.stack([vectors[t] for t in ids]))
    schema = pq.read_schema(tmp_path / "e.parquet")
    assert schema.field("embedding").type.value_type == pa.float32()
    assert schema.metadata[b"schema_version"] == b"1.0"
    with pytest.raises(EmbeddingsFileError, match="--keep-windows"):
        read_windows(tmp_path / "e.parquet")  # b and c have none
    write_embeddings({"a": vectors["a"]}, ["a"], tmp_path / "w.parquet", windows)
    np.testing.assert_array_equal(read_windows(tmp_path / "w.parquet")[0], windows["a"])
    write_embeddings({}, ["a"], tmp_path / "empty.parquet")
    with pytest.raises(EmbeddingsFileError, match="no embeddings"):
        read_embeddings(tmp_path / "empty.parquet")

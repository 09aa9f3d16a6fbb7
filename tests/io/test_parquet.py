from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.io.parquet import read_table, write_table
from pipeline.io.schemas import SchemaVersionError, table_schema

TRACK = {
    "track_id": "t1",
    "status": "ok",
    "audio_path": "/a.wav",
    "catalog_line": 2,
    "duration_s": 12.5,
    "truncated": False,
    "mean_vocalness": 0.7,
    "language": "en",
    "detected_language": "fr",
    "segment_count": 1,
}
SEGMENT = {
    "track_id": "t1",
    "segment_index": 0,
    "start_s": 0.0,
    "end_s": 12.5,
    "transcript": "hi",
    "clean_transcript": "hi",
    "language": "en",
    "language_probability": 0.9,
    "detected_language": "fr",
    "detected_language_probability": 0.95,
    "avg_logprob": -0.2,
    "no_speech_prob": 0.01,
    "compression_ratio": 1.1,
    "temperature": 0.0,
    "tokens": [1, 2],
    "token_agreement": 1.0,
    "text_embedding": [0.5, 0.5],
    "singing": "sung",
    "shard": "shards/part-00000.tar",
    "shard_key": "part-00000/000000",
}


@pytest.mark.parametrize(("name", "row"), [("tracks", TRACK), ("segments", SEGMENT)])
def test_write_then_read_keeps_rows_and_schema(tmp_path: Path, name: str, row: dict) -> None:
    write_table([row], name, tmp_path / name / "part-00000.parquet")
    table = read_table(tmp_path / name, name)
    assert table.schema.equals(table_schema(name), check_metadata=True)
    (read,) = table.to_pylist()
    for key, value in row.items():
        assert read[key] == pytest.approx(value), key
    assert not list((tmp_path / name).glob(".tmp-*"))


def test_writer_never_infers_and_refuses_bad_types(tmp_path: Path) -> None:
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        write_table([TRACK | {"segment_count": "one"}], "tracks", tmp_path / "p.parquet")
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, ValueError)):
        write_table([TRACK | {"track_id": None}], "tracks", tmp_path / "p.parquet")


def test_reader_refuses_an_unknown_major_version(tmp_path: Path) -> None:
    schema = table_schema("tracks").with_metadata({"schema_version": "2.0"})
    pq.write_table(pa.Table.from_pylist([TRACK], schema=schema), tmp_path / "part-00000.parquet")
    with pytest.raises(SchemaVersionError, match=r"version 2\.0"):
        read_table(tmp_path, "tracks")


def test_a_column_added_by_a_later_minor_version_reads_as_null(tmp_path: Path) -> None:
    older = pa.schema(
        [f for f in table_schema("segments") if not f.name.startswith("detected_")],
        metadata={"schema_name": "segments", "schema_version": "1.1"},
    )
    row = {k: v for k, v in SEGMENT.items() if not k.startswith("detected_")}
    pq.write_table(pa.Table.from_pylist([row], schema=older), tmp_path / "part-00000.parquet")
    (read,) = read_table(tmp_path, "segments", ["language", "detected_language"]).to_pylist()
    assert read == {"language": "en", "detected_language": None}

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds

from pipeline.io.webdataset import (
    NoShardsError,
    ShardSample,
    UnsafeShardError,
    index_shard,
    iter_folder,
    iter_samples,
    list_shards,
    write_shard,
)


def _samples() -> list[ShardSample]:
    rng = np.random.default_rng(0)
    return [
        ShardSample(
            f"part-00000/{i:06d}",
            {"track_id": f"a.b/c{i}", "segment_index": i},
            {
                "encoder": rng.standard_normal((1500, 8)).astype(np.float16),
                "decoder": rng.standard_normal((i, 8)).astype(np.float16),
                "text": rng.standard_normal(4).astype(np.float32),
            },
        )
        for i in range(3)
    ]


def test_write_then_read_with_our_reader_and_webdataset(tmp_path: Path) -> None:
    shard = tmp_path / "part-00000.tar"
    written = _samples()
    write_shard(written, shard)
    read = list(iter_samples(shard))
    assert [s.key for s in read] == [s.key for s in written]
    for a, b in zip(read, written, strict=True):
        assert a.meta == b.meta
        for name in b.arrays:
            assert a.arrays[name].dtype == b.arrays[name].dtype
            np.testing.assert_array_equal(a.arrays[name], b.arrays[name])
    library = list(wds.WebDataset(str(shard), shardshuffle=False).decode())
    assert len(library) == 3
    assert library[2]["json"]["track_id"] == "a.b/c2"
    assert library[2]["decoder.npy"].shape == (2, 8)


def test_identical_samples_give_identical_bytes(tmp_path: Path) -> None:
    write_shard(_samples(), tmp_path / "a.tar")
    write_shard(_samples(), tmp_path / "b.tar")
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


@pytest.mark.parametrize("name", ["/etc/evil.json", "../evil.json", "a/../../evil.json"])
def test_reader_refuses_escaping_member_names(tmp_path: Path, name: str) -> None:
    shard = tmp_path / "evil.tar"
    with tarfile.open(shard, "w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(UnsafeShardError):
        list(iter_samples(shard))


def test_selected_arrays_folders_and_random_access(tmp_path: Path) -> None:
    written = _samples()
    write_shard(written[:2], tmp_path / "shards" / "part-00000.tar")
    write_shard(written[2:], tmp_path / "shards" / "part-00001.tar")
    (tmp_path / "shards" / ".tmp-x-part-00002.tar").write_bytes(b"partial")
    assert list_shards(tmp_path) == list_shards(tmp_path / "shards")
    assert len(list_shards(tmp_path)) == 2
    read = list(iter_folder(tmp_path, frozenset({"text"})))
    assert [s.key for s in read] == [s.key for s in written]
    assert all(set(s.arrays) == {"text"} and s.meta for s in read)
    indexed = [entry for shard in list_shards(tmp_path) for entry in index_shard(shard)]
    for (key, meta, refs), sample in zip(indexed, written, strict=True):
        assert key == sample.key and meta == sample.meta
        for name, array in sample.arrays.items():
            assert refs[name].shape == array.shape
            np.testing.assert_array_equal(refs[name].load(), array)
    with pytest.raises(NoShardsError, match="no part-"):
        list_shards(tmp_path / "empty")

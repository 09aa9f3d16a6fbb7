import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.io.embeddings import write_embeddings
from pipeline.io.run_dir import write_split
from pipeline.metrics import RetrievalInputError
from pipeline.retrieval.evaluate import FusionSpec, distances, evaluate
from pipeline.retrieval.search import nearest

pytestmark = pytest.mark.timeout(60)  # each of these takes seconds


def _unit(*rows: list[float]) -> np.ndarray:
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    ids = ["a1", "a2", "b1", "b2", "c1"]
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "track_id,audio_path,work_id\n"
        + "".join(f"{t},{t}.wav,{t[0]}\n" for t in ids)
        + "extra,extra.wav,z\n"
    )
    # A: a1's nearest is b1, so its AP is 1/2; B: perfect. Fused with weight 3, B wins.
    a = _unit([1, 0, 0], [0.6, 0.8, 0], [0.95, 0.31, 0], [0.5, 0, 0.86], [0, 0, 1])
    b = _unit([1, 0, 0], [0.99, 0.1, 0], [0, 1, 0], [0, 0.99, 0.1], [0, 0, 1])
    write_embeddings(dict(zip(ids, a, strict=True)), ids, tmp_path / "a.parquet")
    write_embeddings(dict(zip(ids, b, strict=True)), ids[::-1], tmp_path / "b.parquet")
    return tmp_path / "a.parquet", tmp_path / "b.parquet", catalog


def test_evaluate_one_file_and_a_fusion(files: tuple[Path, Path, Path]) -> None:
    a, b, catalog = files
    alone = evaluate(a, catalog)
    assert alone["tracks"] == 5 and alone["queries"] == 4  # c1 has no other version
    assert alone["map"] < 1.0
    assert evaluate(b, catalog)["map"] == pytest.approx(1.0)
    fused = evaluate(a, catalog, FusionSpec(b, 3.0))
    assert fused["map"] == pytest.approx(1.0) and fused["fusion"]["weight"] == 3.0
    _, matrix = distances(a, FusionSpec(b, 3.0))
    _, da = distances(a)
    _, db = distances(b)
    order = [4 - i for i in range(5)]  # b was written in reverse order
    np.testing.assert_allclose(matrix, da + 3.0 * db[np.ix_(order, order)], atol=1e-6)
    json.dumps(fused)  # JSON-ready


def test_holdout_queries_only_unseen_works(files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    a, _, catalog = files
    write_split(tmp_path / "run", frozenset({"a"}), frozenset({"b", "c"}))
    held_out = evaluate(a, catalog, holdout=tmp_path / "run")
    assert held_out["queries"] == 2 and held_out["holdout"] == str(tmp_path / "run")


def test_unknown_tracks_and_queries_are_refused(
    files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    a, _, _ = files
    other = tmp_path / "other.csv"
    other.write_text("track_id,audio_path,work_id\na1,a1.wav,a\n")
    with pytest.raises(RetrievalInputError, match="not in"):
        evaluate(a, other)
    with pytest.raises(RetrievalInputError, match="'zz' is neither a track_id in"):
        nearest(a, "zz")


def test_search_ranks_by_cosine(files: tuple[Path, Path, Path]) -> None:
    _, b, _ = files
    results = nearest(b, "a1", k=2)
    assert results[0][0] == "a2" and results[1][1] == pytest.approx(0.0, abs=1e-6)
    assert results[0][1] == pytest.approx(0.99 / np.linalg.norm([0.99, 0.1, 0]), rel=1e-5)
    assert len(nearest(b, "a1", k=100)) == 4

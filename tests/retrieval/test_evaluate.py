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
    # "extra" (work z, alone) has no vector: a candidate only, ranked last by every query.
    assert alone["catalog_tracks"] == 6 and alone["embedded_tracks"] == 5
    assert alone["missing_tracks"] == 1 and alone["missing_track_ids"] == ["extra"]
    assert alone["queries"] == 4  # c1 and extra have no other version
    assert alone["map"] < 1.0
    assert evaluate(b, catalog)["map"] == pytest.approx(1.0)
    fused = evaluate(a, catalog, FusionSpec(b, 3.0))
    assert fused["map"] == pytest.approx(1.0) and fused["fusion"]["weight"] == 3.0
    tracks = ["a1", "a2", "b1", "b2", "c1", "extra"]
    matrix, embedded = distances(a, tracks, catalog, FusionSpec(b, 3.0))
    da, _ = distances(a, tracks, catalog)
    db, _ = distances(b, tracks, catalog)  # b was written in reverse order: same rows
    assert embedded == tracks[:5]
    np.testing.assert_allclose(matrix[:5, :5], da[:5, :5] + 3.0 * db[:5, :5], atol=1e-6)
    assert np.isinf(matrix[5]).all() and np.isinf(matrix[:, 5]).all()
    json.dumps(fused)  # JSON-ready


def _three_works(tmp_path: Path, skip: set[str]) -> tuple[Path, Path]:
    """3 works x 2 versions, each pair on its own axis (a perfect ranking), minus ``skip``."""
    ids = ["a1", "a2", "b1", "b2", "c1", "c2"]
    catalog = tmp_path / "three.csv"
    catalog.write_text(
        "track_id,audio_path,work_id\n" + "".join(f"{t},{t}.wav,{t[0]}\n" for t in ids)
    )
    axes = {"a": [1, 0, 0], "b": [0, 1, 0], "c": [0, 0, 1]}
    vectors = {t: _unit(axes[t[0]])[0] for t in ids if t not in skip}
    path = tmp_path / f"without-{'-'.join(sorted(skip)) or 'none'}.parquet"
    write_embeddings(vectors, ids, path)
    return path, catalog


def test_a_track_without_a_vector_counts_as_ranked_last(tmp_path: Path) -> None:
    """c2 has no vector: c1 finds it 5th of 5 (after every embedded track), and c2 as a query
    ties all 5 candidates, so c1 takes the last place: AP 1/5 each, the four others 1."""
    path, catalog = _three_works(tmp_path, {"c2"})
    m = evaluate(path, catalog)
    assert m["queries"] == 6 and m["missing_track_ids"] == ["c2"]
    assert m["map"] == pytest.approx((4 + 2 / 5) / 6)
    assert m["mr1"] == pytest.approx((4 + 2 * 5) / 6)
    assert m["hr_at_1"] == pytest.approx(4 / 6) and m["hr_at_10"] == pytest.approx(1.0)


def test_benchmarks_and_evaluate_give_one_map(tmp_path: Path) -> None:
    from benchmarks._common import distance_matrix, file_vectors, query_scores

    for skip in (set(), {"c2"}, {"a1", "b2"}, {"c1", "c2"}):
        path, catalog = _three_works(tmp_path, skip)
        ids = ["a1", "a2", "b1", "b2", "c1", "c2"]
        aps, first = query_scores(distance_matrix(file_vectors(path), ids), [t[0] for t in ids])
        m = evaluate(path, catalog)
        assert m["queries"] == len(aps) == 6
        assert m["map"] == pytest.approx(float(aps.mean()))
        assert m["mr1"] == pytest.approx(float(first.mean()))


def test_fusion_counts_a_track_missing_from_either_file_as_missing(tmp_path: Path) -> None:
    full, catalog = _three_works(tmp_path, set())
    partial, _ = _three_works(tmp_path, {"b1"})
    for weight in (1.5, 0.0):  # 0 x inf must not turn into NaN
        for first, second in ((full, partial), (partial, full)):
            m = evaluate(first, catalog, FusionSpec(second, weight))
            assert m["missing_track_ids"] == ["b1"] and m["embedded_tracks"] == 5
            assert m["map"] == pytest.approx(evaluate(partial, catalog)["map"])


def test_holdout_queries_only_test_works(files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    a, _, catalog = files
    write_split(tmp_path / "run", frozenset({"a", "c"}), frozenset({"z"}), frozenset({"b"}))
    held_out = evaluate(a, catalog, holdout=tmp_path / "run")
    assert held_out["queries"] == 2 and held_out["holdout"] == str(tmp_path / "run")


def test_holdout_of_a_run_split_before_test_works(
    files: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a, _, catalog = files
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "split.json").write_text('{"train_works": ["a"], "val_works": ["b"]}')
    held_out = evaluate(a, catalog, holdout=tmp_path / "old")
    assert held_out["queries"] == 2  # b's versions: validation works query, with a warning
    assert "split before test works were recorded" in caplog.text


def test_holdout_without_a_test_work_of_two_versions_measures_nothing(
    files: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a, _, catalog = files
    write_split(tmp_path / "run", frozenset({"a"}), frozenset({"b"}), frozenset({"c", "z"}))
    held_out = evaluate(a, catalog, holdout=tmp_path / "run")
    assert held_out["queries"] == 0 and held_out["map"] is None and held_out["mr1"] is None
    assert "nothing measured" in caplog.text
    json.dumps(held_out)


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

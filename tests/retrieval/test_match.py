"""Matching a catalog: exact neighbours, the HNSW path, candidate works, and the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline import cli
from pipeline.io.embeddings import write_embeddings
from pipeline.io.parquet import read_table
from pipeline.retrieval.exact import exact_search
from pipeline.retrieval.index import CosineIndex
from pipeline.retrieval.match import MatchBlock, connected_components, match_blocks
from tests.conftest import run_cli

pytestmark = pytest.mark.timeout(60)  # each of these takes seconds


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _works(works: int, versions: int, dim: int, spread: float, seed: int = 0) -> np.ndarray:
    """``works * versions`` unit vectors, each work's versions tight around its own centre."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((works, dim))
    return _unit(
        np.repeat(centres, versions, axis=0) + spread * rng.standard_normal((works * versions, dim))
    )


def _brute_force(vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Each track's k nearest others by a full similarity matrix and a Python sort."""
    scores = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    return [
        sorted(((j, scores[i, j]) for j in range(len(vectors)) if j != i), key=lambda p: -p[1])[:k]
        for i in range(len(vectors))
    ]


def _rows(blocks: list[MatchBlock]) -> list[tuple[int, int, float, int]]:
    return [
        (int(t), int(m), float(s), int(r))
        for b in blocks
        for t, m, s, r in zip(b.track, b.match, b.score, b.rank, strict=True)
    ]


def test_exact_match_rows_are_the_brute_force_neighbours() -> None:
    vectors = _unit(np.random.default_rng(0).standard_normal((60, 8)))
    rows = _rows(list(match_blocks(CosineIndex.build(vectors, len(vectors)), k=5, min_score=None)))
    expected = _brute_force(vectors, 5)
    assert len(rows) == 60 * 5
    for track, match, score, rank in rows:
        assert match != track
        j, s = expected[track][rank - 1]
        assert match == j and score == pytest.approx(s, abs=1e-5)


def test_blocks_of_any_size_give_one_answer() -> None:
    vectors = _unit(np.random.default_rng(1).standard_normal((40, 6)))
    whole = exact_search(vectors, vectors, 7)
    for block_scores in (1, 7, 41, 10_000):
        blocked = exact_search(vectors, vectors, 7, block_scores=block_scores)
        np.testing.assert_array_equal(blocked[0], whole[0])
        np.testing.assert_allclose(blocked[1], whole[1], atol=1e-6)  # BLAS kernels differ by size


def test_duplicates_never_match_themselves_and_ties_go_by_file_order() -> None:
    base = _unit(np.random.default_rng(2).standard_normal((4, 5)))
    vectors = np.concatenate([base, base[:1], base[:1]])  # tracks 0, 4 and 5 are one vector
    rows = _rows(list(match_blocks(CosineIndex.build(vectors, len(vectors)), k=2, min_score=None)))
    firsts = {(t, r): m for t, m, _, r in rows}
    assert all(t != m for t, m, _, _ in rows)
    assert (firsts[(0, 1)], firsts[(0, 2)]) == (4, 5)
    assert (firsts[(4, 1)], firsts[(4, 2)]) == (0, 5)
    assert (firsts[(5, 1)], firsts[(5, 2)]) == (0, 4)


def test_min_score_leaves_out_weak_matches_and_keeps_the_ranks() -> None:
    vectors = _works(works=5, versions=3, dim=16, spread=0.05)
    index = CosineIndex.build(vectors, len(vectors))
    every = _rows(list(match_blocks(index, k=6, min_score=None)))
    strong = _rows(list(match_blocks(index, k=6, min_score=0.9)))
    assert strong == [row for row in every if row[2] >= 0.9]
    assert {(t, m) for t, m, _, _ in strong} == {
        (t, m) for t in range(15) for m in range(15) if t != m and t // 3 == m // 3
    }  # a work's other two versions, nothing else
    assert sorted({r for _, _, _, r in strong}) == [1, 2]


def test_hnsw_path_agrees_with_exact_on_well_separated_works() -> None:
    vectors = _works(works=30, versions=10, dim=32, spread=0.05)
    exact = CosineIndex.build(vectors, len(vectors))
    hnsw = CosineIndex.build(vectors, len(vectors), exact_below=0)
    assert (exact.method, hnsw.method) == ("exact", "faiss-hnsw")
    want = _rows(list(match_blocks(exact, k=5, min_score=None)))
    got = _rows(list(match_blocks(hnsw, k=5, min_score=None)))
    # each track's 5 nearest are 5 of its work's 9 other versions, far nearer than any other
    # work: with efSearch 256 over 300 vectors the graph search finds them, whatever its order
    assert [(t, m, r) for t, m, _, r in got] == [(t, m, r) for t, m, _, r in want]
    np.testing.assert_allclose([s for *_, s, _ in got], [s for *_, s, _ in want], atol=1e-5)


def test_small_catalogs_and_single_queries_stay_exact() -> None:
    vectors = _unit(np.random.default_rng(3).standard_normal((10, 4)))
    assert CosineIndex.build(vectors, queries=10).method == "exact"
    assert CosineIndex.build(vectors, queries=1, exact_below=5).method == "exact"  # 10 < 25
    assert CosineIndex.build(vectors, queries=10, exact_below=5).method == "faiss-hnsw"


def test_connected_components_of_hand_built_groups() -> None:
    # {0, 3, 5} by a chain 5-3-0, {1, 2} twice and backwards, 4 only with itself, 6 alone
    a = np.array([5, 3, 1, 2, 4])
    b = np.array([3, 0, 2, 1, 4])
    np.testing.assert_array_equal(connected_components(7, a, b), [0, 1, 1, 0, 2, 0, 3])
    np.testing.assert_array_equal(connected_components(3, a[:0], b[:0]), [0, 1, 2])
    chain = np.arange(999)  # a path 0-1-...-999 given in reverse: one component
    assert set(connected_components(1000, chain[::-1] + 1, chain[::-1])) == {0}


def _catalog(tmp_path: Path) -> tuple[Path, list[str]]:
    """4 works of 3 versions and 3 distractors, written with the real embeddings writer."""
    vectors = np.concatenate(
        [_works(works=4, versions=3, dim=12, spread=0.05), _works(3, 1, 12, 0.0, seed=9)]
    )
    ids = [f"w{i // 3}-{i % 3}" for i in range(12)] + ["d0", "d1", "d2"]
    path = tmp_path / "e.parquet"
    write_embeddings(dict(zip(ids, vectors, strict=True)), ids, path)
    return path, ids


@pytest.mark.parametrize("exact_below", ["100000", "0"])
def test_match_cli_writes_matches_clusters_and_a_summary(tmp_path: Path, exact_below: str) -> None:
    embeddings, ids = _catalog(tmp_path)
    output = tmp_path / "out" / "matches.parquet"
    result = run_cli(
        *("run", "match", "--embeddings", str(embeddings), "--output", str(output)),
        *("--k", "4", "--min-score", "0.9", "--clusters", "--exact-below", exact_below),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert pq.read_schema(output).metadata[b"schema_version"] == b"1.0"
    matches = read_table(output, "matches").to_pylist()
    pairs = {(r["track_id"], r["match_track_id"]) for r in matches}
    works = [i for i in ids if i.startswith("w")]
    assert pairs == {(a, b) for a in works for b in works if a != b and a[:2] == b[:2]}
    assert all(r["score"] >= 0.9 and r["rank"] in (1, 2) for r in matches)
    clusters = read_table(output.with_name("matches.clusters.parquet"), "clusters").to_pylist()
    assert [r["track_id"] for r in clusters] == ids
    assert [r["cluster_id"] for r in clusters] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 5, 6]
    assert [r["cluster_size"] for r in clusters] == [3] * 12 + [1] * 3
    summary = json.loads(output.with_name("matches.summary.json").read_text())
    method = "exact" if exact_below != "0" else "faiss-hnsw"
    assert summary | {"seconds": 0} == {
        "embeddings": str(embeddings),
        "tracks": 15,
        "dimension": 12,
        "k": 4,
        "min_score": 0.9,
        "method": method,
        "rows": 24,
        "clusters": 4,
        "largest_cluster": 3,
        "alone": 3,
        "seconds": 0,
    }


def test_match_cli_without_min_score_keeps_k_rows_per_track(tmp_path: Path) -> None:
    embeddings, _ = _catalog(tmp_path)
    output = tmp_path / "m.parquet"
    assert cli.main(["run", "match", "--embeddings", str(embeddings), "--output", str(output)]) == 0
    matches = read_table(output, "matches").to_pylist()
    assert len(matches) == 15 * 14  # --k 20 > 14 other tracks: every other track, ranked
    assert [r["rank"] for r in matches[:14]] == list(range(1, 15))
    assert not output.with_name("m.clusters.parquet").exists()


def _fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_match_cli_refuses_bad_input(capsys, tmp_path: Path) -> None:
    embeddings, _ = _catalog(tmp_path)
    out = ("--output", str(tmp_path / "m.parquet"))
    match = ("run", "match", "--embeddings")
    assert "no such embeddings file" in _fails(capsys, *match, str(tmp_path / "none"), *out)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("not parquet")
    assert "not a Parquet file" in _fails(capsys, *match, str(garbage), *out)
    assert "at least 1" in _fails(capsys, *match, str(embeddings), *out, "--k", "0")
    search = ("search", "--embeddings", str(embeddings), "--query", "w0-0", "--k", "0")
    assert "at least 1" in _fails(capsys, *search)
    assert "needs --min-score" in _fails(capsys, *match, str(embeddings), *out, "--clusters")
    err = _fails(capsys, *match, str(embeddings), *out, "--min-score", "1.5")
    assert "[-1, 1]" in err
    err = _fails(capsys, *match, str(embeddings), "--output", str(embeddings))
    assert "is the embeddings file" in err
    long = tmp_path / "long.parquet"
    write_embeddings({"a": np.ones(3, dtype=np.float32)}, ["a"], long)
    assert "not unit-length" in _fails(capsys, *match, str(long), *out)
    assert not (tmp_path / "m.parquet").exists()


def test_ties_go_by_file_order_across_tiles() -> None:
    # small integer vectors: every score is an exact integer whatever the BLAS sums first, and
    # most are tied, also across the tile edges that small score blocks put between columns
    vectors = np.random.default_rng(4).integers(-1, 2, size=(50, 3)).astype(np.float32)
    scores = vectors @ vectors.T
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :6]
    for block_scores in (1, 5, 6, 64, 300, 10_000):
        positions, found = exact_search(vectors, vectors, 6, block_scores=block_scores)
        np.testing.assert_array_equal(positions, expected)
        np.testing.assert_array_equal(found, np.take_along_axis(scores, expected, axis=1))

"""``pipeline run match``: every track's nearest other tracks, and candidate works from them.

Candidate works are the connected components of the match graph: two tracks are joined when
either is among the other's ``k`` nearest with a cosine of at least ``min_score``. That is
single-linkage agglomeration cut at ``min_score``, restricted to the k-nearest-neighbour graph,
so it costs n * k edges instead of the n^2 pairs average linkage needs, and never depends on
the order of the catalog. Its known weakness is chaining: one false edge above the score
merges two works, so the score, not k, is the knob to tighten.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import UserError
from pipeline.io.atomic import atomic_write_bytes
from pipeline.io.embeddings import read_embeddings
from pipeline.io.parquet import write_column_batches
from pipeline.retrieval.index import EXACT_BELOW, CosineIndex, Progress


class MatchInputError(UserError, ValueError):
    """Matching settings or embeddings that cannot be matched as given."""


@dataclass(frozen=True)
class MatchBlock:
    """Match rows of a block of query tracks, as positions in the embeddings file."""

    track: np.ndarray  # (r,) int64 query positions
    match: np.ndarray  # (r,) int64 neighbour positions
    score: np.ndarray  # (r,) float32 cosine
    rank: np.ndarray  # (r,) int32, 1 = nearest


def check_unit_length(vectors: np.ndarray, where: str) -> None:
    """Scores are inner products, cosines only for unit vectors: refuse anything else."""
    norms = np.linalg.norm(vectors, axis=1)
    bad = np.flatnonzero(~(np.abs(norms - 1) <= 1e-3))  # NaN counts as bad
    if len(bad):
        raise MatchInputError(
            f"{where}: {len(bad)} embedding(s) are not unit-length (row {bad[0]} has norm "
            f"{norms[bad[0]]:.4g}); write the file with `pipeline run embed`"
        )


def neighbours_of(
    own: np.ndarray, positions: np.ndarray, scores: np.ndarray, k: int, min_score: float | None
) -> MatchBlock:
    """The ``k`` nearest *other* tracks of each query from its ``k + 1`` search results: the
    query itself is dropped wherever it appears (a duplicate vector may outrank it), else the
    last result is; then results below ``min_score`` go, which keeps the ranks 1, 2, ..."""
    keep = (positions != own[:, None]) & (positions >= 0)
    keep &= np.cumsum(keep, axis=1) <= k
    rank = np.cumsum(keep, axis=1)
    if min_score is not None:
        keep &= scores >= min_score
    rows, cols = np.nonzero(keep)
    return MatchBlock(
        own[rows],
        positions[rows, cols],
        scores[rows, cols].astype(np.float32),
        rank[rows, cols].astype(np.int32),
    )


def check_match_settings(k: int, min_score: float | None, clusters: bool = False) -> None:
    if k < 1:
        raise MatchInputError(f"--k {k}: give at least 1 neighbour per track")
    if min_score is not None and not -1 <= min_score <= 1:
        raise MatchInputError(f"--min-score {min_score}: a cosine lies in [-1, 1]")
    if clusters and min_score is None:
        raise MatchInputError(
            "--clusters needs --min-score: without it every track joins its k nearest and the "
            "catalog falls into a few giant clusters"
        )


def match_blocks(
    index: CosineIndex, k: int, min_score: float | None, progress: Progress | None = None
) -> Iterator[MatchBlock]:
    """Every track of ``index`` against all the others, one block of query tracks at a time."""
    check_match_settings(k, min_score)
    n = len(index.vectors)
    for block in index.blocks(n):
        positions, scores = index.search(index.vectors[block], k + 1)
        yield neighbours_of(np.arange(block.start, block.stop), positions, scores, k, min_score)
        if progress is not None:
            progress("match", block.stop, n)


def connected_components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,) component label of each node of the undirected graph with edges ``a[i] - b[i]``,
    numbered 0, 1, ... in order of each component's first node.

    Vectorised hooking and pointer jumping: each round hangs every root on the smallest root
    it has an edge to, then flattens the trees, until no edge joins two trees.
    """
    parent = np.arange(n)
    while True:
        ra, rb = parent[a], parent[b]
        joined = ra != rb
        if not joined.any():
            break
        low, high = np.minimum(ra[joined], rb[joined]), np.maximum(ra[joined], rb[joined])
        np.minimum.at(parent, high, low)
        while not np.array_equal(parent, parent[parent]):
            parent = parent[parent]
    _, labels = np.unique(parent, return_inverse=True)  # roots are each component's first node
    return labels


def clusters_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.clusters.parquet")


def summary_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.summary.json")


def _match_columns(
    ids: np.ndarray, blocks: Iterator[MatchBlock], kept: list[MatchBlock] | None
) -> Iterator[dict[str, np.ndarray]]:
    """Column batches of the matches table; keeps the blocks in ``kept`` for clustering."""
    for block in blocks:
        if kept is not None:
            kept.append(block)
        yield {
            "track_id": ids[block.track],
            "match_track_id": ids[block.match],
            "score": block.score,
            "rank": block.rank,
        }


def _write_clusters(ids: np.ndarray, edges: list[MatchBlock], target: Path) -> dict[str, int]:
    """The candidate works of the match graph as a clusters table; their counts."""
    a = np.concatenate([e.track for e in edges]) if edges else np.empty(0, dtype=np.int64)
    b = np.concatenate([e.match for e in edges]) if edges else np.empty(0, dtype=np.int64)
    labels = connected_components(len(ids), a, b)
    sizes = np.bincount(labels)
    columns = {
        "track_id": ids,
        "cluster_id": labels.astype(np.int32),
        "cluster_size": sizes[labels].astype(np.int32),
    }
    write_column_batches([columns], "clusters", target)
    return {
        "clusters": int((sizes > 1).sum()),
        "largest_cluster": int(sizes.max()),
        "alone": int((sizes == 1).sum()),
    }


def run_match(
    embeddings: Path,
    output: Path,
    k: int = 20,
    min_score: float | None = None,
    clusters: bool = False,
    exact_below: int = EXACT_BELOW,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the matches table of an embeddings file (and its clusters table when asked), then
    a summary JSON beside it; return that summary."""
    check_match_settings(k, min_score, clusters)
    start = time.perf_counter()
    track_ids, vectors = read_embeddings(embeddings)
    check_unit_length(vectors, str(embeddings))
    index = CosineIndex.build(vectors, len(vectors), exact_below, progress)
    ids = np.array(track_ids, dtype=object)
    edges: list[MatchBlock] | None = [] if clusters else None
    blocks = match_blocks(index, k, min_score, progress)
    rows = write_column_batches(_match_columns(ids, blocks, edges), "matches", output)
    summary: dict[str, Any] = {
        "embeddings": str(embeddings),
        "tracks": len(ids),
        "dimension": int(vectors.shape[1]),
        "k": k,
        "min_score": min_score,
        "method": index.method,
        "rows": rows,
    }
    if edges is not None:
        summary |= _write_clusters(ids, edges, clusters_path(output))
    summary["seconds"] = round(time.perf_counter() - start, 2)
    atomic_write_bytes(summary_path(output), json.dumps(summary, indent=2).encode())
    return summary

"""Exact cosine nearest neighbours: BLAS matrix products over blocks of queries.

A block holds at most ``block_scores`` scores, so memory stays bounded (64 MB of float32 and
twice that of positions by default) whatever the catalog size; the cost grows with queries x
catalog, which is why a large catalog matched against itself goes through an ANN index instead
(``pipeline.retrieval.index``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK_SCORES = 1 << 24  # scores per block: 64 MB of float32


def query_blocks(queries: int, catalog: int, block_scores: int = BLOCK_SCORES) -> Iterator[slice]:
    """Slices of the query rows whose score blocks against ``catalog`` vectors fit the bound."""
    rows = max(1, block_scores // max(catalog, 1))
    for start in range(0, queries, rows):
        yield slice(start, min(start + rows, queries))


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(q, k) positions and scores of each row's ``k`` highest scores, best first; equal scores
    in position order, so the result does not depend on the BLAS or the CPU."""
    n = scores.shape[1]
    k = min(k, n)
    if k < n:
        candidates = np.argpartition(scores, n - k, axis=1)[:, n - k :]
    else:
        candidates = np.broadcast_to(np.arange(k), scores.shape).copy()
    values = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -values), axis=1)
    return np.take_along_axis(candidates, order, axis=1), np.take_along_axis(values, order, axis=1)


def exact_search(
    vectors: np.ndarray, queries: np.ndarray, k: int, block_scores: int = BLOCK_SCORES
) -> tuple[np.ndarray, np.ndarray]:
    """(q, k) catalog positions and cosine scores of each query's ``k`` nearest vectors.

    Both sides are unit-length (n, e) / (q, e) float32, so the inner product is the cosine.
    """
    k = min(k, len(vectors))
    positions = np.empty((len(queries), k), dtype=np.int64)
    scores = np.empty((len(queries), k), dtype=np.float32)
    for block in query_blocks(len(queries), len(vectors), block_scores):
        positions[block], scores[block] = top_k(queries[block] @ vectors.T, k)
    return positions, scores

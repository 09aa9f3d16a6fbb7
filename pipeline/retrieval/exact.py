"""Exact cosine nearest neighbours: BLAS products of query blocks against catalog tiles.

A block of up to ``QUERY_ROWS`` queries meets the catalog one tile at a time. BLAS then reads
each catalog vector once per thousand queries; with a few queries per product it would read
the whole catalog per few queries and wait on memory (2.7x slower at a million tracks). At
most ``block_scores`` scores are held at once (64 MB of float32 by default), whatever the
catalog size. Each tile's scores are merged into a running top k: only scores above a row's
k-th best so far, and above a cheap bound of the tile's own k-th best, are candidates, so a
few per row are sorted. The cost still grows with queries x catalog, which is why a catalog
above ``index.EXACT_BELOW`` matched against itself goes through an ANN index instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK_SCORES = 1 << 24  # scores held at a time: 64 MB of float32
QUERY_ROWS = 1024  # queries per product: enough that BLAS computes rather than waits on memory


def query_blocks(queries: int, rows: int = QUERY_ROWS) -> Iterator[slice]:
    """Slices of ``rows`` query rows (the last shorter), searched one product at a time."""
    for start in range(0, queries, rows):
        yield slice(start, min(start + rows, queries))


def tile_floor(tile: np.ndarray, k: int) -> np.ndarray:
    """(q, 1) a bound no higher than each row's k-th highest score: the lowest of the maxima of
    k disjoint column groups (k scores are at least that high). A max and a compare cost far
    less than partitioning the tile."""
    q, width = tile.shape
    if width < k:
        return np.full((q, 1), -np.inf, dtype=tile.dtype)
    group = width // k
    return tile[:, : group * k].reshape(q, k, group).max(axis=2).min(axis=1, keepdims=True)


def merge_top_k(
    positions: np.ndarray, scores: np.ndarray, tile: np.ndarray, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """The running (q, k) top ``positions``/``scores`` (best first, -inf where unfilled) merged
    with a (q, w) ``tile`` of scores for catalog positions ``offset`` .. ``offset + w - 1``.

    Equal scores go in position order, so the answer does not depend on the tiling, the BLAS or
    the CPU: tiles come in catalog order, so a tile's score must beat the k-th best so far
    strictly, and every score tied with the tile's own bound is kept for the sort.
    """
    q, k = positions.shape
    width = tile.shape[1]
    above_kth = np.nextafter(scores[:, -1:], np.float32(np.inf))  # > k-th best, as >=
    hits = np.flatnonzero(tile >= np.maximum(above_kth, tile_floor(tile, k)))
    rows, columns = np.divmod(hits, width)
    all_rows = np.concatenate([np.repeat(np.arange(q), k), rows])
    all_positions = np.concatenate([positions.ravel(), columns + offset])
    all_scores = np.concatenate([scores.ravel(), tile.ravel()[hits]])
    order = np.lexsort((all_positions, -all_scores, all_rows))
    starts = np.searchsorted(all_rows[order], np.arange(q))  # every row has at least k entries
    take = order[starts[:, None] + np.arange(k)]
    return all_positions[take], all_scores[take]


def exact_search(
    vectors: np.ndarray, queries: np.ndarray, k: int, block_scores: int = BLOCK_SCORES
) -> tuple[np.ndarray, np.ndarray]:
    """(q, k) catalog positions and cosine scores of each query's ``k`` nearest vectors.

    Both sides are unit-length (n, e) / (q, e) float32, so the inner product is the cosine.
    """
    k = min(k, len(vectors))
    positions = np.empty((len(queries), k), dtype=np.int64)
    scores = np.empty((len(queries), k), dtype=np.float32)
    rows = max(1, min(len(queries), QUERY_ROWS, block_scores))
    columns = max(1, block_scores // rows)
    for block in query_blocks(len(queries), rows):
        best_positions = np.full((block.stop - block.start, k), -1, dtype=np.int64)
        best_scores = np.full((block.stop - block.start, k), -np.inf, dtype=np.float32)
        for start in range(0, len(vectors), columns):
            tile = queries[block] @ vectors[start : start + columns].T
            best_positions, best_scores = merge_top_k(best_positions, best_scores, tile, start)
        positions[block], scores[block] = best_positions, best_scores
    return positions, scores

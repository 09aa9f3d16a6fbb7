"""Cosine nearest neighbours of unit vectors: exact up to a million and a half tracks, a faiss
HNSW index when a larger catalog is matched against itself.

Exact search costs queries x catalog products; an HNSW index costs a build that grows with the
catalog, then less per query, and misses neighbours. ``benchmarks/ann.py`` (2 CPU cores, a
million random 384-d unit vectors, two versions of each query planted at a cosine of 0.3-0.9)
measured a catalog matched against itself: exact takes 5400 s and returns every version; the
graph (M 32) takes 2394 s and returns 70% of them at efSearch 256, 6165 s and 87% at 1024. So
exact is the only setting that keeps a catalog's versions at a million, and it stays exact
until its n^2 time (about 3.4 h at 1.5M on 2 cores, fewer on more) is past a nightly job.
faiss beat usearch at equal graph settings on build time, queries per second and recall.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.retrieval.exact import exact_search, query_blocks

if TYPE_CHECKING:
    import faiss

EXACT_BELOW = 1_500_000  # tracks: a catalog matched against itself is searched exactly below this
HNSW_M = 32  # graph edges per node
EF_CONSTRUCTION = 128  # candidates kept while inserting: a better graph for a slower build
EF_SEARCH = 256  # candidates kept while searching: recall against queries per second
ADD_BLOCK = 50_000  # vectors per insertion call, so a progress callback can report

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def use_ann(catalog: int, queries: int, exact_below: int = EXACT_BELOW) -> bool:
    """Whether an index pays: exact costs queries x catalog, as much as ``exact_below`` tracks
    matched against themselves at most."""
    return catalog * queries >= exact_below * exact_below


@dataclass
class CosineIndex:
    """Unit vectors and, above the threshold, their HNSW graph; ``search`` answers either way."""

    vectors: np.ndarray  # (n, e) float32, unit length
    hnsw: faiss.IndexHNSWFlat | None = None

    @property
    def method(self) -> str:
        return "exact" if self.hnsw is None else "faiss-hnsw"

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        queries: int,
        exact_below: int = EXACT_BELOW,
        progress: Progress | None = None,
    ) -> CosineIndex:
        """The index to answer ``queries`` queries over ``vectors``; builds a graph only if it
        pays (see ``use_ann``)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not use_ann(len(vectors), queries, exact_below):
            return cls(vectors)
        import faiss  # only a large catalog needs it

        hnsw = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = EF_CONSTRUCTION
        hnsw.hnsw.efSearch = EF_SEARCH
        for start in range(0, len(vectors), ADD_BLOCK):
            hnsw.add(vectors[start : start + ADD_BLOCK])
            if progress is not None:
                progress("index", min(start + ADD_BLOCK, len(vectors)), len(vectors))
        return cls(vectors, hnsw)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(q, k) positions and cosine scores of each query's ``k`` nearest vectors, best
        first; the HNSW graph may return fewer, padding with position -1."""
        if self.hnsw is None:
            return exact_search(self.vectors, queries, k)
        k = min(k, len(self.vectors))
        scores, positions = self.hnsw.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return positions, scores

    def blocks(self, queries: int) -> list[slice]:
        """Slices of the query rows to search at a time: bounded memory, progress per block."""
        if self.hnsw is None:
            return list(query_blocks(queries))
        return [slice(s, min(s + ADD_BLOCK, queries)) for s in range(0, queries, ADD_BLOCK)]

"""``pipeline search``: the nearest tracks to a track of an embeddings file, or to an audio file.

One query goes through the same index as ``pipeline run match``, which searches it exactly: one
product with the catalog costs milliseconds even at a million tracks, a graph build minutes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.io.embeddings import read_embeddings
from pipeline.metrics import RetrievalInputError
from pipeline.retrieval.index import CosineIndex
from pipeline.retrieval.match import neighbours_of


def _found(ids: list[str], positions: np.ndarray, scores: np.ndarray) -> list[tuple[str, float]]:
    return [(ids[p], float(s)) for p, s in zip(positions, scores, strict=True)]


def nearest(embeddings: Path, query: str, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` tracks most cosine-similar to track ``query`` (itself excluded), best first."""
    ids, vectors = read_embeddings(embeddings)
    if query not in ids:
        raise RetrievalInputError(
            f"{query!r} is neither a track_id in {embeddings} nor an audio file"
        )
    q = np.array([ids.index(query)])
    positions, scores = CosineIndex.build(vectors, queries=1).search(vectors[q], k + 1)
    found = neighbours_of(q, positions, scores, k, min_score=None)
    return _found(ids, found.match, found.score)


def nearest_to_vector(embeddings: Path, query: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` tracks most cosine-similar to a unit-length ``query`` embedding, best first."""
    ids, vectors = read_embeddings(embeddings)
    if query.shape != vectors.shape[1:]:
        raise RetrievalInputError(
            f"{embeddings} holds {vectors.shape[1]}-d embeddings, the query is {query.shape[0]}-d:"
            " give the --model that embedded the file"
        )
    positions, scores = CosineIndex.build(vectors, queries=1).search(query[None], k)
    return _found(ids, positions[0], scores[0])

"""``pipeline search``: the nearest tracks to a track of an embeddings file, or to an audio file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.io.embeddings import read_embeddings
from pipeline.retrieval.metrics import RetrievalInputError


def _top(
    ids: list[str], scores: np.ndarray, k: int, exclude: int | None
) -> list[tuple[str, float]]:
    if exclude is not None:
        scores[exclude] = -np.inf
    order = np.argsort(-scores, kind="stable")[: min(k, len(ids) - (exclude is not None))]
    return [(ids[i], float(scores[i])) for i in order]


def nearest(embeddings: Path, query: str, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` tracks most cosine-similar to track ``query`` (itself excluded), best first."""
    ids, vectors = read_embeddings(embeddings)
    if query not in ids:
        raise RetrievalInputError(
            f"{query!r} is neither a track_id in {embeddings} nor an audio file"
        )
    q = ids.index(query)
    return _top(ids, vectors @ vectors[q], k, exclude=q)


def nearest_to_vector(embeddings: Path, query: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` tracks most cosine-similar to a unit-length ``query`` embedding, best first."""
    ids, vectors = read_embeddings(embeddings)
    if query.shape != vectors.shape[1:]:
        raise RetrievalInputError(
            f"{embeddings} holds {vectors.shape[1]}-d embeddings, the query is {query.shape[0]}-d:"
            " give the --model that embedded the file"
        )
    return _top(ids, vectors @ query, k, exclude=None)

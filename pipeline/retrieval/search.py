"""``pipeline search``: the nearest tracks to one track of an embeddings file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.io.embeddings import read_embeddings
from pipeline.retrieval.metrics import RetrievalInputError


def nearest(embeddings: Path, query: str, k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` tracks most cosine-similar to ``query`` (itself excluded), best first."""
    ids, vectors = read_embeddings(embeddings)
    if query not in ids:
        raise RetrievalInputError(f"track {query!r} is not in {embeddings}")
    q = ids.index(query)
    scores = vectors @ vectors[q]
    scores[q] = -np.inf
    order = np.argsort(-scores, kind="stable")[: min(k, len(ids) - 1)]
    return [(ids[i], float(scores[i])) for i in order]

"""``pipeline run evaluate``: version-retrieval metrics of an embeddings file, or of two fused.

Works come from the catalog. Fusion follows WEALY: distance D = D_a + weight * D_b with cosine
distances, over the tracks both files embed. ``holdout`` names a training run: only tracks of
works it did not train on query, so the figure is not a training-set figure; every track stays
a candidate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io.catalog import read_catalog
from pipeline.io.embeddings import read_embeddings, read_windows
from pipeline.io.run_dir import read_train_works
from pipeline.metrics import (
    RetrievalInputError,
    cosine_distances,
    max_window_distances,
    retrieval_metrics,
)
from pipeline.train.data import work_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FusionSpec:
    embeddings: Path
    weight: float = 1.5


def distances(
    embeddings: Path, fusion: FusionSpec | None = None, max_windows: bool = False
) -> tuple[list[str], np.ndarray]:
    """(track ids, (n, n) distances) of one embeddings file, or of two fused.

    ``max_windows`` scores the first file by its window embeddings (1 - max cosine over window
    pairs) instead of the track vectors.
    """
    ids, vectors = read_embeddings(embeddings)
    matrix = (
        max_window_distances(read_windows(embeddings)) if max_windows else cosine_distances(vectors)
    )
    if fusion is None:
        return ids, matrix
    other_ids, other_vectors = read_embeddings(fusion.embeddings)
    other_index = {t: i for i, t in enumerate(other_ids)}
    keep = [i for i, t in enumerate(ids) if t in other_index]
    if len(keep) < len(ids):
        log.warning("fusion: %d track(s) missing from %s", len(ids) - len(keep), fusion.embeddings)
    rows = [other_index[ids[i]] for i in keep]
    fused = matrix[np.ix_(keep, keep)] + fusion.weight * cosine_distances(other_vectors[rows])
    return [ids[i] for i in keep], fused


def evaluate(
    embeddings: Path,
    catalog: Path,
    fusion: FusionSpec | None = None,
    holdout: Path | None = None,
    max_windows: bool = False,
) -> dict[str, Any]:
    """Metrics and what they were computed on, as a JSON-ready dict."""
    ids, matrix = distances(embeddings, fusion, max_windows)
    entries = {e.track_id: e for e in read_catalog(catalog)}
    unknown = [t for t in ids if t not in entries]
    if unknown:
        raise RetrievalInputError(
            f"{len(unknown)} embedded track(s) not in {catalog}: {unknown[:5]}"
        )
    works = [work_key({"track_id": t, "work_id": entries[t].work_id}) for t in ids]
    queries = None
    if holdout is not None:
        trained = read_train_works(holdout)
        queries = np.array([w not in trained for w in works])
    metrics = retrieval_metrics(matrix, works, queries)
    return {
        "embeddings": str(embeddings),
        "fusion": None
        if fusion is None
        else {"embeddings": str(fusion.embeddings), "weight": fusion.weight},
        "holdout": None if holdout is None else str(holdout),
        "scoring": "max over window pairs" if max_windows else "track vectors",
        "tracks": len(ids),
        **metrics.to_dict(),
    }

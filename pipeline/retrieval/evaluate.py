"""``pipeline run evaluate``: version-retrieval metrics of an embeddings file, or of two fused.

Every catalog track counts: a track with no vector is still a candidate, ranked after every
embedded track, and still a query, which ties every candidate and so ranks its versions last
(``pipeline.metrics.catalog_distances``). A method that skips hard tracks scores no better
for it. Works come from the catalog. Fusion follows WEALY: distance D = D_a + weight * D_b with
cosine distances; a track missing from either file is missing. ``holdout`` names a training
run: only tracks of its test works query (works that chose no checkpoint); every track stays a
candidate.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io.catalog import read_catalog
from pipeline.io.embeddings import read_embeddings, read_windows
from pipeline.io.run_dir import read_split
from pipeline.metrics import (
    RetrievalInputError,
    RetrievalMetrics,
    catalog_distances,
    cosine_distances,
    fused_distances,
    max_window_distances,
    retrieval_metrics,
)
from pipeline.train.data import work_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FusionSpec:
    embeddings: Path
    weight: float = 1.5


MISSING_IDS_LISTED = 100  # metrics.json names this many of the tracks without a vector


def _file_distances(
    path: Path, tracks: list[str], catalog: Path, max_windows: bool
) -> tuple[np.ndarray, set[str]]:
    """(catalog-wide distances, the ids it embeds) of one embeddings file."""
    ids, vectors = read_embeddings(path)
    known = set(tracks)
    unknown = [t for t in ids if t not in known]
    if unknown:
        raise RetrievalInputError(
            f"{path}: {len(unknown)} embedded track(s) not in {catalog}: {unknown[:5]}; "
            "evaluate against the catalog it was embedded from"
        )
    matrix = max_window_distances(read_windows(path)) if max_windows else cosine_distances(vectors)
    return catalog_distances(tracks, ids, matrix), set(ids)


def distances(
    embeddings: Path,
    tracks: list[str],
    catalog: Path,
    fusion: FusionSpec | None = None,
    max_windows: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """((n, n) distances over the catalog's ``tracks``, the tracks every file embeds).

    ``max_windows`` scores the first file by its window embeddings (1 - max cosine over window
    pairs) instead of the track vectors. A track without a vector is at +inf (see the module).
    """
    matrix, embedded = _file_distances(embeddings, tracks, catalog, max_windows)
    if fusion is not None:
        other, other_embedded = _file_distances(fusion.embeddings, tracks, catalog, False)
        if embedded - other_embedded:
            log.warning(
                "fusion: %d track(s) missing from %s",
                len(embedded - other_embedded),
                fusion.embeddings,
            )
        matrix = fused_distances(matrix, other, fusion.weight)
        embedded &= other_embedded
    return matrix, [t for t in tracks if t in embedded]


def holdout_queries(run: Path, works: list[str]) -> np.ndarray:
    """(n,) bool: the tracks of ``run``'s test works. A run split before test works were
    recorded lets every work it did not train on query, its validation works too, and warns."""
    split = read_split(run)
    if split.test is None:
        log.warning(
            "%s was split before test works were recorded: its non-training works query, "
            "validation works included (they chose its best.pt)",
            run,
        )
        return np.array([w not in split.train for w in works])
    return np.array([w in split.test for w in works])


def evaluate(
    embeddings: Path,
    catalog: Path,
    fusion: FusionSpec | None = None,
    holdout: Path | None = None,
    max_windows: bool = False,
) -> dict[str, Any]:
    """Metrics and what they were computed on, as a JSON-ready dict.

    With ``holdout``, a run whose test works have no other version in the catalog measures
    nothing: the figures are null, with a warning, rather than an error that stops a DAG.
    """
    entries = read_catalog(catalog)
    tracks = [e.track_id for e in entries]
    works = [work_key({"track_id": e.track_id, "work_id": e.work_id}) for e in entries]
    matrix, embedded = distances(embeddings, tracks, catalog, fusion, max_windows)
    present = set(embedded)
    missing = [t for t in tracks if t not in present]
    queries = None if holdout is None else holdout_queries(holdout, works)
    versions = Counter(works)
    if queries is not None and not any(versions[w] > 1 for w in np.array(works)[queries]):
        log.warning("%s: no test work has two versions in %s: nothing measured", holdout, catalog)
        figures: dict[str, Any] = {f: None for f in RetrievalMetrics.__dataclass_fields__}
        figures["queries"] = 0
    else:
        figures = retrieval_metrics(matrix, works, queries).to_dict()
    return {
        "embeddings": str(embeddings),
        "fusion": None
        if fusion is None
        else {"embeddings": str(fusion.embeddings), "weight": fusion.weight},
        "holdout": None if holdout is None else str(holdout),
        "scoring": "max over window pairs" if max_windows else "track vectors",
        "catalog_tracks": len(tracks),
        "embedded_tracks": len(embedded),
        "missing_tracks": len(missing),
        "missing_track_ids": missing[:MISSING_IDS_LISTED],
        **figures,
    }

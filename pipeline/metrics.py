"""Version-retrieval metrics over a distance matrix, as the LIVI and WEALY papers report them.

Below both users: the trainers (``train/``) score validation with them and ``run evaluate``
(``retrieval/``) reports them, so neither package imports the other for them.

Every track that has another version of its work is a query against all other tracks (itself
excluded); tracks without another version are candidates (distractors) only. Ties in distance
are broken pessimistically: relevant tracks rank after irrelevant ones at the same distance,
so a model that outputs one vector for everything scores the worst, never the random, value.

An evaluation counts every catalog track: ``catalog_distances`` places a track without a vector
at distance +inf from and to everything, so every query ranks it after every embedded track,
and as a query it ties all candidates, which puts its versions last (see there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from pipeline.errors import UserError


class RetrievalInputError(UserError, ValueError):
    """Embeddings, catalog or query that cannot be evaluated or searched as given."""


@dataclass(frozen=True)
class RetrievalMetrics:
    queries: int
    map: float  # mean average precision over the full ranking
    map_at_10: float  # AP@10 = sum of precision@r at relevant r <= 10, / min(relevant, 10)
    mr1: float  # mean rank (1-based) of the first relevant track
    hr_at_1: float  # share of queries whose first result is relevant
    hr_at_10: float  # share of queries with a relevant track in the first ten
    arp: float  # average rank percentile of the relevant tracks, 100 * rank / candidates
    random_map: float  # expected MAP of a uniformly random ranking, for scale

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def relevant_ranks(distances: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based ranks of the relevant candidates, ascending, ties broken pessimistically.

    ``distances`` and ``relevant`` are (n,) over the candidates of one query (self removed).
    """
    order = np.lexsort((relevant, distances))  # by distance, then irrelevant before relevant
    return np.flatnonzero(relevant[order]) + 1


def average_precision(ranks: np.ndarray) -> float:
    """AP from the ascending 1-based ranks of all relevant candidates."""
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def average_precision_at(ranks: np.ndarray, k: int) -> float:
    hits = ranks[ranks <= k]
    return float(np.sum(np.arange(1, len(hits) + 1) / hits) / min(len(ranks), k))


def expected_random_ap(candidates: int, relevant: int) -> float:
    """E[AP] when ``relevant`` of ``candidates`` are placed uniformly at random.

    Position k is relevant with probability R/n; given that, the expected precision there is
    (1 + (R-1)(k-1)/(n-1)) / k. Summing over k and dividing by R gives
    (H_n + (R-1)/(n-1) * (n - H_n)) / n, with H_n the n-th harmonic number.
    """
    n, r = candidates, relevant
    harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
    spread = (r - 1) / (n - 1) * (n - harmonic) if n > 1 else 0.0
    return (harmonic + spread) / n


def query_ranks(
    distances: np.ndarray, works: Sequence[str | None], queries: np.ndarray | None = None
) -> list[np.ndarray]:
    """Per query with another version of its work, in track order, the ascending 1-based ranks
    of those versions among all other tracks (see ``retrieval_metrics`` for the arguments)."""
    n = len(works)
    if distances.shape != (n, n):
        raise ValueError(f"distances must be ({n}, {n}), got {distances.shape}")
    labels = np.array([w if w is not None else f"\0{i}" for i, w in enumerate(works)], dtype=object)
    found = []
    for q in range(n) if queries is None else np.flatnonzero(queries):
        others = np.arange(n) != q
        relevant = labels[others] == labels[q]
        if relevant.any():
            found.append(relevant_ranks(distances[q, others], relevant))
    return found


def retrieval_metrics(
    distances: np.ndarray, works: Sequence[str | None], queries: np.ndarray | None = None
) -> RetrievalMetrics:
    """Metrics of the (n, n) ``distances`` between tracks whose works are ``works``.

    A track with work None is never relevant to anything. ``queries`` (n,) bool limits which
    tracks query (e.g. held-out works); all tracks stay candidates. Raises when no query has
    another version, since then there is nothing to measure.
    """
    n = len(works)
    per_query = query_ranks(distances, works, queries)
    if not per_query:
        raise RetrievalInputError("no query has another version of its work: nothing to evaluate")
    aps = [average_precision(ranks) for ranks in per_query]
    aps10 = [average_precision_at(ranks, 10) for ranks in per_query]
    first = [ranks[0] for ranks in per_query]
    percentiles = [float(np.mean(100.0 * ranks / (n - 1))) for ranks in per_query]
    random_aps = [expected_random_ap(n - 1, len(ranks)) for ranks in per_query]
    first_ranks = np.array(first)
    return RetrievalMetrics(
        queries=len(aps),
        map=float(np.mean(aps)),
        map_at_10=float(np.mean(aps10)),
        mr1=float(np.mean(first_ranks)),
        hr_at_1=float(np.mean(first_ranks <= 1)),
        hr_at_10=float(np.mean(first_ranks <= 10)),
        arp=float(np.mean(percentiles)),
        random_map=float(np.mean(random_aps)),
    )


def catalog_distances(
    tracks: Sequence[str], embedded: Sequence[str], distances: np.ndarray
) -> np.ndarray:
    """(n, n) distances over every one of ``tracks``: those of ``embedded`` (the (m, m)
    ``distances``, in ``embedded`` order), +inf from and to a track without a vector.

    A missing candidate therefore ranks after every embedded track; among missing candidates,
    ties are broken as everywhere (relevant after irrelevant). A missing query ties every
    candidate, so its versions take the last positions: with r versions among c candidates,
    ranks c - r + 1 .. c. The benchmarks and ``run evaluate`` both rank through this function,
    so one set of vectors gets one MAP.
    """
    if distances.shape != (len(embedded), len(embedded)):
        raise ValueError(
            f"distances must be ({len(embedded)}, {len(embedded)}), got {distances.shape}"
        )
    where = {t: i for i, t in enumerate(embedded)}
    rows = np.array([where.get(t, -1) for t in tracks], dtype=np.int64)
    present = np.flatnonzero(rows >= 0)
    full = np.full((len(tracks), len(tracks)), np.inf)
    full[np.ix_(present, present)] = distances[np.ix_(rows[present], rows[present])]
    return full


def fused_distances(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    """WEALY's fusion D = D_a + weight * D_b of two ``catalog_distances``; a pair that either
    side lacks (+inf) stays +inf whatever the weight (0 * inf would be NaN)."""
    missing = np.isinf(first) | np.isinf(second)
    fused = np.where(missing, 0.0, first) + weight * np.where(missing, 0.0, second)
    fused[missing] = np.inf
    return fused


def cosine_distances(embeddings: np.ndarray) -> np.ndarray:
    """(n, n) 1 - cosine similarity of L2-normalised (n, e) embeddings."""
    return 1.0 - embeddings @ embeddings.T


def max_window_distances(windows: list[np.ndarray]) -> np.ndarray:
    """(n, n) 1 - the maximum cosine over all pairs of windows of two tracks (WEALY's test
    scoring), from each track's (w_i, e) L2-normalised window embeddings."""
    starts = np.cumsum([0] + [len(w) for w in windows[:-1]])
    everything = np.concatenate(windows)
    similarity = everything @ everything.T  # (W, W)
    per_row_track = np.maximum.reduceat(similarity, starts, axis=0)  # (n, W)
    return 1.0 - np.maximum.reduceat(per_row_track, starts, axis=1)  # (n, n)

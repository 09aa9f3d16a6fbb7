import itertools

import numpy as np
import pytest

from pipeline.metrics import (
    RetrievalInputError,
    average_precision,
    average_precision_at,
    catalog_distances,
    cosine_distances,
    expected_random_ap,
    fused_distances,
    max_window_distances,
    relevant_ranks,
    retrieval_metrics,
)

# Four tracks: 0 and 1 are versions of a; 2 is alone in b; 3 has no work.
DISTANCES = np.array(
    [
        [0.0, 0.2, 0.1, 0.5],
        [0.2, 0.0, 0.3, 0.3],
        [0.1, 0.3, 0.0, 0.4],
        [0.5, 0.3, 0.4, 0.0],
    ]
)

pytestmark = pytest.mark.timeout(60)  # each of these takes seconds
WORKS = ["a", "a", "b", None]


def test_hand_computed_ranking() -> None:
    # Query 0 ranks 2 (0.1), then 1 (0.2, relevant): AP 1/2. Query 1 ranks 0 first: AP 1.
    m = retrieval_metrics(DISTANCES, WORKS)
    assert m.queries == 2  # 2 has no other version, 3 has no work: candidates only
    assert m.map == pytest.approx(0.75)
    assert m.map_at_10 == pytest.approx(0.75)
    assert m.mr1 == pytest.approx(1.5)
    assert m.hr_at_1 == pytest.approx(0.5)
    assert m.hr_at_10 == pytest.approx(1.0)
    assert m.arp == pytest.approx((100 * 2 / 3 + 100 * 1 / 3) / 2)
    assert m.random_map == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)  # E[1/rank], 3 candidates


def test_several_relevant_and_cut_at_ten() -> None:
    ranks = relevant_ranks(np.array([0.5, 0.1, 0.3, 0.9]), np.array([True, False, True, False]))
    np.testing.assert_array_equal(ranks, [2, 3])
    assert average_precision(ranks) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert average_precision_at(np.array([1, 11]), 10) == pytest.approx(1 / 2)
    assert average_precision(np.array([1, 11])) == pytest.approx((1 + 2 / 11) / 2)


def test_ties_rank_relevant_tracks_last() -> None:
    ranks = relevant_ranks(np.zeros(3), np.array([True, False, False]))
    np.testing.assert_array_equal(ranks, [3])
    constant = retrieval_metrics(np.zeros((3, 3)), ["a", "a", "b"])
    assert constant.map == pytest.approx(0.5) and constant.mr1 == 2


def test_query_mask_and_no_positive() -> None:
    only_1 = retrieval_metrics(DISTANCES, WORKS, queries=np.array([False, True, False, False]))
    assert only_1.queries == 1 and only_1.map == pytest.approx(1.0)
    with pytest.raises(RetrievalInputError, match="no query has another version"):
        retrieval_metrics(DISTANCES, ["a", "b", "c", None])


@pytest.mark.parametrize(("n", "r"), [(5, 2), (6, 3), (4, 1)])
def test_expected_random_ap_matches_every_permutation(n: int, r: int) -> None:
    aps = []
    for order in itertools.permutations(range(n)):
        relevant = np.array([i < r for i in order])
        aps.append(average_precision(np.flatnonzero(relevant) + 1))
    assert expected_random_ap(n, r) == pytest.approx(np.mean(aps))


def test_cosine_distances_of_unit_vectors() -> None:
    e = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    np.testing.assert_allclose(cosine_distances(e), [[0, 1, 2], [1, 0, 1], [2, 1, 0]])


def test_max_window_distances_take_the_best_pair() -> None:
    e = np.eye(3)
    windows = [e[[0]], e[[1, 2]], np.array([[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])]
    expected = 1 - np.array(
        [
            [1.0, 0.0, 0.6],
            [0.0, 1.0, 1.0],  # track 1's second window equals track 2's second window
            [0.6, 1.0, 1.0],
        ]
    )
    np.testing.assert_allclose(max_window_distances(windows), expected)


def test_catalog_distances_put_a_track_without_a_vector_last() -> None:
    """Tracks x, y, z, w; y and w have no vector. Every query ranks them after x and z; among
    the two missing candidates, ties put the relevant one last; a missing query ties all."""
    embedded = np.array([[0.0, 1.5], [1.5, 0.0]])  # x, z: even a far track beats a missing one
    full = catalog_distances(["x", "y", "z", "w"], ["x", "z"], embedded)
    np.testing.assert_array_equal(full[np.ix_([0, 2], [0, 2])], embedded)
    assert np.isinf(full[1]).all() and np.isinf(full[:, 3]).all()
    works = ["a", "b", "c", "a"]  # x's version w is missing; y's work has no other version
    m = retrieval_metrics(full, works)
    assert m.queries == 2  # x: w ranks 3rd of 3 (after z, then y, relevant last); w: ties
    assert m.map == pytest.approx(1 / 3) and m.mr1 == 3
    fused = fused_distances(full, full, 0.0)
    assert not np.isnan(fused).any() and np.isinf(fused[1]).all()
    np.testing.assert_array_equal(fused[np.ix_([0, 2], [0, 2])], embedded)

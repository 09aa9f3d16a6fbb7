from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.io.webdataset import list_shards
from pipeline.train.data import (
    TrainingDataError,
    index_tracks,
    livi_batches,
    probe_dims,
    split_works,
    wealy_batch_count,
    wealy_batches,
    work_versions,
)
from tests.feature_fixtures import write_tiny_features

pytestmark = pytest.mark.timeout(60)  # each of these takes seconds


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("tiny") / "features"
    return list_shards(write_tiny_features(root, works=5, without_text=frozenset({"w1-2"})))


def test_index_concatenates_segments_in_order(shards: list[Path]) -> None:
    tracks = index_tracks(shards)
    assert [t.track_id for t in tracks][:4] == ["w0-0", "w0-1", "w0-2", "w1-0"]
    assert {t.work for t in tracks} == {f"w{i}" for i in range(5)}
    states = tracks[0].load_states()
    assert states.shape == (24, 8) and tracks[0].length == 24 and states.dtype == np.float32
    assert probe_dims(shards) == (8, 6)
    assert work_versions(shards) == {f"w{i}": 3 for i in range(5)}


def test_split_holds_out_whole_works_deterministically() -> None:
    versions = {"a": 3, "b": 2, "c": 2, "d": 1, "e": 1}
    train, val, test = split_works(versions, 0.1, seed=0, test_fraction=0.1)
    assert train | val | test == set(versions) and not (train & val or train & test or val & test)
    # Three multi-version works: validation gets one, test none, so training keeps two.
    assert len(val & {"a", "b", "c"}) == 1 and not (val | test) & {"d", "e"}  # round(0.2) = 0
    assert not test
    assert split_works(versions, 0.1, seed=0, test_fraction=0.1) == (train, val, test)
    assert split_works(versions, 0.1, seed=0) == (train, val, frozenset())  # same validation
    assert split_works(versions, 0.0, seed=0) == (frozenset(versions), frozenset(), frozenset())
    _, no_val, only_test = split_works(versions, 0.0, seed=0, test_fraction=0.1)
    assert not no_val and len(only_test) == 1 and only_test < {"a", "b", "c"}


def test_split_draws_test_works_after_validation_works() -> None:
    versions = {f"m{i}": 2 for i in range(20)} | {f"s{i}": 1 for i in range(10)}
    train, val, test = split_works(versions, 0.1, seed=3, test_fraction=0.1)
    multi = {w for w in versions if w.startswith("m")}
    assert len(val & multi) == len(test & multi) == 2 and len(val - multi) == len(test - multi) == 1
    assert len(train) == 24 and not (val & test)
    assert split_works(versions, 0.1, seed=3)[1] == val  # a test split leaves validation as it was
    four = {w: 2 for w in "abcd"}
    _, four_val, four_test = split_works(four, 0.1, seed=0, test_fraction=0.1)
    assert len(four_val) == len(four_test) == 1  # four works: one each, two left to train


def test_livi_batches_skip_segments_without_text_and_follow_the_seed(shards: list[Path]) -> None:
    works = frozenset(f"w{i}" for i in range(5))
    batches = list(livi_batches(shards, works, 4, seed=0, epoch=0, shuffle_buffer=8))
    assert sum(len(e) for e, _ in batches) == 5 * 3 * 2 - 2  # w1-2's two segments lack text
    assert batches[0][0].shape == (4, 16, 8) and batches[0][1].shape == (4, 6)
    again = list(livi_batches(shards, works, 4, seed=0, epoch=0, shuffle_buffer=8))
    other = list(livi_batches(shards, works, 4, seed=0, epoch=1, shuffle_buffer=8))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again, strict=True))
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(batches, other, strict=True))
    only_w0 = list(livi_batches(shards, frozenset({"w0"}), 100, seed=0, epoch=0))
    assert len(only_w0) == 1 and len(only_w0[0][0]) == 6


def test_wealy_batches_pair_versions_of_each_work(shards: list[Path]) -> None:
    tracks = index_tracks(shards)
    batches = list(wealy_batches(tracks, 2, 2, crop=10, seed=0, epoch=0))
    assert len(batches) == wealy_batch_count(tracks, 2) == 2  # 5 works: 2 + 2, a lone one dropped
    states, valid, labels = batches[0]
    assert states.shape == (4, 10, 8) and valid.all()
    assert labels.tolist() == [0, 0, 1, 1]
    with pytest.raises(TrainingDataError, match="two or more works"):
        next(wealy_batches(tracks[:3], 2, 2, crop=10, seed=0, epoch=0))

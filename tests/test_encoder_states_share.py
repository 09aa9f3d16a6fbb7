"""``encoder_states_share``: encoder states (97% of an output's bytes) kept for a sample of
tracks only; the trainers and ``embed`` read what the others still have."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import ConfigError, ExtractConfig, load_config
from pipeline.io.webdataset import iter_samples, list_shards, write_shard
from pipeline.partition import keeps_encoder_states
from pipeline.train.data import index_tracks, livi_batches, mean_text_target, probe_dims
from tests.feature_fixtures import write_tiny_features

pytestmark = pytest.mark.timeout(60)


def test_the_sample_is_a_fixed_share_of_track_ids() -> None:
    ids = [f"track-{i}" for i in range(2000)]
    assert all(keeps_encoder_states(t, 1.0) for t in ids)
    assert not any(keeps_encoder_states(t, 0.0) for t in ids)
    half = [t for t in ids if keeps_encoder_states(t, 0.5)]
    assert 900 < len(half) < 1100
    assert half == [t for t in ids if keeps_encoder_states(t, 0.5)]  # the same on every run
    assert set(half) >= {t for t in ids if keeps_encoder_states(t, 0.25)}  # nested shares
    assert keeps_encoder_states("caf\udce9", 0.5) in (True, False)  # non-UTF-8 catalog bytes


def test_the_share_is_a_setting_from_zero_to_one() -> None:
    config = load_config(None, {}, ["encoder_states_share=0.1"])
    assert config.encoder_states_share == 0.1
    assert config.output_affecting()["encoder_states_share"] == 0.1  # in the manifest
    with pytest.raises(ConfigError, match="a share from 0 to 1"):
        ExtractConfig(encoder_states_share=1.5)


def test_readers_use_only_the_tracks_with_encoder_states(tmp_path: Path) -> None:
    shards = list_shards(write_tiny_features(tmp_path / "features", works=4))
    full = list(livi_batches(shards, frozenset({"w0", "w1", "w2", "w3"}), 100, 0, 0))
    for shard in shards[:2]:  # works w0 and w1 outside the share
        samples = list(iter_samples(shard))
        for sample in samples:
            del sample.arrays["encoder"]
        write_shard(samples, Path(shard))
    works = frozenset({"w0", "w1", "w2", "w3"})
    batches = list(livi_batches(shards, works, 100, seed=0, epoch=0))
    assert sum(len(e) for e, _ in batches) == sum(len(e) for e, _ in full) // 2
    assert probe_dims(shards) == (8, 6)
    assert mean_text_target(shards, works).shape == (6,)  # every track's text targets
    assert len(index_tracks(shards)) == 12  # WEALY: every track's decoder states

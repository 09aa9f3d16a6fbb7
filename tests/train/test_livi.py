import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.io.run_dir import BEST, LAST, load_checkpoint, read_train_works
from pipeline.io.webdataset import list_shards
from pipeline.models.livi import LiviConfig, LiviModel, apply_rope
from pipeline.report.curve import CURVE_FILE
from pipeline.train.data import livi_segments
from pipeline.train.livi import livi_preset, train_livi
from tests.feature_fixtures import write_tiny_features

TINY = dataclasses.replace(
    livi_preset("small"),
    hidden_sizes=(16,),
    batch_size=6,
    shuffle_buffer=8,
    val_fraction=0.0,
    test_fraction=0.0,  # every work trains: the step counts below count them all
)

pytestmark = pytest.mark.timeout(60)  # each of these takes seconds


def test_rope_preserves_norms_and_encodes_position() -> None:
    x = torch.randn(2, 7, 8)
    rotated = apply_rope(x)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rotated[:, 0], x[:, 0])  # position 0: no rotation
    same = x[:, :1].expand(-1, 7, -1)
    assert not torch.allclose(apply_rope(same)[:, 1], same[:, 1])  # later positions turn


def test_rope_scores_depend_on_offset_only() -> None:
    q, k = torch.randn(8), torch.randn(8)
    qs, ks = apply_rope(q.expand(6, 8)), apply_rope(k.expand(6, 8))
    torch.testing.assert_close(qs[3] @ ks[1], qs[4] @ ks[2])


def test_shapes_unit_norm_and_layer_scale() -> None:
    model = LiviModel(dataclasses.replace(TINY, input_dim=8, text_dim=6))
    embeddings = model.embed(torch.randn(3, 16, 8))
    assert embeddings.shape == (3, 6)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(3))
    assert torch.all(model.pool.scale_attn == 1e-4) and torch.all(model.pool.scale_mlp == 1e-4)
    assert model.loss(torch.randn(3, 16, 8), torch.randn(3, 6)).ndim == 0


def test_paper_projection_sizes() -> None:
    model = LiviModel(LiviConfig(input_dim=512, text_dim=384))
    linears = [m for m in model.project if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [3072, 2048, 2048, 1536, 384]


def test_loss_decreases_on_tiny_shards(tmp_path: Path) -> None:
    features = write_tiny_features(tmp_path / "features", without_text=frozenset({"w0-0"}))
    results = train_livi(features, tmp_path / "run", dataclasses.replace(TINY, epochs=6))
    assert results[-1].train_loss < 0.8 * results[0].train_loss
    assert results[0].steps == 4  # 22 segments with a text target (w0-0 has none), batches of 6
    checkpoint = load_checkpoint(tmp_path / "run" / LAST)
    assert checkpoint["epoch"] == 6 and (tmp_path / "run" / BEST).exists()


def test_centred_targets_are_the_training_mean_saved_with_the_weights(tmp_path: Path) -> None:
    features = write_tiny_features(tmp_path / "features", works=5)
    config = dataclasses.replace(TINY, epochs=2, centre_targets=True)
    results = train_livi(features, tmp_path / "run", config)
    assert results[-1].train_loss < results[0].train_loss
    shards = list_shards(features)
    train_works = read_train_works(tmp_path / "run")
    targets = [t for _, t in livi_segments(shards, train_works, np.arange(len(shards)))]
    saved = load_checkpoint(tmp_path / "run" / BEST)["model"]["target_mean"]
    expected = np.mean([t / np.linalg.norm(t) for t in targets], axis=0)
    np.testing.assert_allclose(saved.numpy(), expected, rtol=1e-5)
    assert (
        "target_mean"
        not in LiviModel(dataclasses.replace(TINY, input_dim=8, text_dim=6)).state_dict()
    )


def test_validation_map_of_held_out_tracks_is_logged_and_drawn(tmp_path: Path) -> None:
    features = write_tiny_features(tmp_path / "features", works=5)
    config = dataclasses.replace(TINY, epochs=2, val_fraction=0.4)
    results = train_livi(features, tmp_path / "run", config)
    # Two held-out works of three versions: a query's two versions rank among five tracks, so
    # its AP lies between (1/4 + 2/5) / 2 (both last) and 1. Plumbing, not quality.
    assert all(r.val_score is not None and 0.325 <= r.val_score <= 1 for r in results)
    history = load_checkpoint(tmp_path / "run" / LAST)["history"]
    assert history[-1]["val_score"] == results[-1].val_score
    assert (tmp_path / "run" / CURVE_FILE).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

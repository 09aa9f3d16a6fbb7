import dataclasses
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pipeline.io.run_dir import LAST, load_checkpoint
from pipeline.io.webdataset import list_shards
from pipeline.report.curve import CURVE_FILE
from pipeline.train.data import index_tracks, wealy_batches
from pipeline.train.wealy import (
    GeM,
    WealyConfig,
    WealyModel,
    multi_positive_nt_xent,
    train_wealy,
    wealy_preset,
    window_starts,
)
from tests.feature_fixtures import write_tiny_features

pytestmark = pytest.mark.timeout(60)  # each of these takes seconds

TINY = dataclasses.replace(wealy_preset("small"), d_model=16, ffn_dim=32, output_dim=8, crop=8)


def _gem(p: float) -> GeM:
    gem = GeM()
    with torch.no_grad():
        gem.raw_p.fill_(math.log(math.expm1(p - 1.0)) if p > 1 else -30.0)
    return gem


def test_gem_starts_at_three_is_mean_at_one_and_max_for_large_p() -> None:
    x = torch.rand(2, 5, 4) + 0.1
    valid = torch.ones(2, 5, dtype=torch.bool)
    assert GeM().p.item() == pytest.approx(3.0)
    torch.testing.assert_close(_gem(1.0)(x, valid), x.mean(dim=1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(_gem(400.0)(x, valid), x.amax(dim=1), atol=0, rtol=0.01)


def test_gem_ignores_padding() -> None:
    x = torch.rand(1, 3, 4) + 0.1
    padded = torch.cat([x, torch.full((1, 2, 4), 100.0)], dim=1)
    valid = torch.tensor([[True, True, True, False, False]])
    torch.testing.assert_close(GeM()(padded, valid), GeM()(x, torch.ones(1, 3, dtype=torch.bool)))


def _reference_nt_xent(z: torch.Tensor, labels: list[int], t: float) -> float:
    losses = []
    for i in range(len(labels)):
        positives = [j for j in range(len(labels)) if j != i and labels[j] == labels[i]]
        if not positives:
            continue
        denominator = sum(math.exp(z[i] @ z[k] / t) for k in range(len(labels)) if k != i)
        terms = [-math.log(math.exp(z[i] @ z[p] / t) / denominator) for p in positives]
        losses.append(sum(terms) / len(terms))
    return sum(losses) / len(losses)


def test_nt_xent_matches_a_reference_loop() -> None:
    z = F.normalize(torch.randn(7, 5, dtype=torch.float64), dim=-1)
    labels = [0, 0, 1, 1, 1, 2, 3]  # 2 and 3 have no positive: negatives only
    got = multi_positive_nt_xent(z, torch.tensor(labels), 0.1)
    assert got.item() == pytest.approx(_reference_nt_xent(z, labels, 0.1), rel=1e-9)


def test_shapes_unit_norm_and_paper_sizes() -> None:
    model = WealyModel(dataclasses.replace(TINY, input_dim=8))
    states, valid = torch.randn(3, 10, 8), torch.ones(3, 10, dtype=torch.bool)
    valid[0, 6:] = False
    embeddings = model.embed(states, valid)
    assert embeddings.shape == (3, 8)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(3))
    paper = WealyModel(WealyConfig(input_dim=512))
    assert paper.project_in.out_features == 768 and len(paper.encoder.layers) == 4
    assert paper.encoder.layers[0].self_attn.num_heads == 12 and paper.encoder.layers[0].norm_first
    assert paper.project_out.out_features == 512 and paper.project_out.bias is None


def test_windows_overlap_ninety_percent_and_cover_the_end() -> None:
    assert window_starts(5, 10, 0.9) == [0]
    assert window_starts(25, 10, 0.9) == list(range(0, 16))
    assert window_starts(1500 * 2 + 7, 1500, 0.9)[:3] == [0, 150, 300]
    assert window_starts(1500 * 2 + 7, 1500, 0.9)[-1] == 1507


def test_loss_decreases_and_validation_map_is_logged(tmp_path: Path) -> None:
    features = write_tiny_features(tmp_path / "features", works=5)
    config = dataclasses.replace(TINY, epochs=12, lr=3e-3, val_fraction=0.2, works_per_batch=4)
    results = train_wealy(features, tmp_path / "run", config)
    assert all(r.val_score is not None and 0 < r.val_score <= 1 for r in results)
    curve = tmp_path / "run" / CURVE_FILE  # rewritten each epoch: loss and validation MAP
    assert curve.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # One fixed batch of every track, in eval mode: the untrained model, then the trained one.
    tracks = index_tracks(list_shards(features))
    batch = next(wealy_batches(tracks, 5, 3, 24, seed=1, epoch=0))
    torch.manual_seed(config.seed)
    untrained = WealyModel(dataclasses.replace(config, input_dim=8)).eval()
    trained = WealyModel(dataclasses.replace(config, input_dim=8)).eval()
    trained.load_state_dict(load_checkpoint(tmp_path / "run" / LAST)["model"])
    with torch.no_grad():
        assert trained.loss(*batch).item() < 0.7 * untrained.loss(*batch).item()

"""The singing detector: shapes, a falling loss, training and loading through the real code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.cli import main
from pipeline.io.run_dir import BEST, LAST, load_checkpoint, read_run_config
from pipeline.io.webdataset import ShardSample, list_shards, write_shard
from pipeline.models.singing_detector import (
    DEFAULT_DETECTOR,
    DetectorConfig,
    SingingDetector,
    detector_spec,
    load_detector,
    pool_states,
    window_scores,
)
from pipeline.train.data import TrainingDataError
from pipeline.train.singing import detector_preset, export_detector, read_windows, train_singing

pytestmark = pytest.mark.timeout(60)  # each of these takes seconds

TINY = dataclasses.replace(detector_preset("small"), epochs=4, batch_size=8, val_fraction=0.25)


def write_judged_shards(
    root: Path, works: int = 4, windows: int = 6, frames: int = 12, width: int = 8, seed: int = 0
) -> Path:
    """An extraction's shards as ``singing.keep_unsung_states`` writes them: per work, a sung
    track (sung and detector-only unsung windows) and a flagged instrumental (all unsung).
    Sung windows carry a louder pattern in the first half of the channels."""
    rng = np.random.default_rng(seed)
    sung_pattern = np.zeros(width)
    sung_pattern[: width // 2] = 2.0
    for w in range(works):
        samples = []
        for track, flagged in ((f"song{w}", False), (f"instr{w}", True)):
            for s in range(windows):
                sung = not flagged and s % 3 != 0
                states = rng.standard_normal((frames, width)) + (sung_pattern if sung else 0.0)
                meta = {
                    "track_id": track,
                    "segment_index": s,
                    "work_id": f"w{w}",
                    "singing": "sung" if sung else "few_words",
                }
                if not sung and not flagged:
                    meta["detector_only"] = True
                arrays = {"encoder": states.astype(np.float16)}
                samples.append(ShardSample(f"part-{w:05d}/{len(samples):06d}", meta, arrays))
        write_shard(samples, root / "shards" / f"part-{w:05d}.tar")
    return root


def test_pooling_and_score_shapes() -> None:
    states = torch.randn(3, 12, 8)
    pooled = pool_states(states.half())
    assert pooled.shape == (3, 16) and pooled.dtype == torch.float32
    torch.testing.assert_close(pooled[:, :8], states.mean(dim=1), atol=2e-3, rtol=2e-3)
    for hidden in (0, 4):
        model = SingingDetector(DetectorConfig(input_dim=8, hidden_size=hidden))
        scores = model.scores(states)
        assert scores.shape == (3,) and bool(((scores > 0) & (scores < 1)).all())
        assert model.loss(pooled, torch.tensor([1, 0, 1])).ndim == 0
    with pytest.raises(ValueError, match="expected"):
        pool_states(torch.randn(12, 8))


def test_loss_falls_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = SingingDetector(DetectorConfig(input_dim=8))
    pooled = pool_states(torch.randn(16, 12, 8) + torch.arange(16)[:, None, None] % 2)
    labels = torch.arange(16) % 2
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-2)
    losses = []
    for _ in range(20):
        loss = model.loss(pooled, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]  # 1.02 -> 0.15 on this CPU


def test_windows_take_the_verdicts_of_the_shards_or_given_labels(tmp_path: Path) -> None:
    shards = list_shards(write_judged_shards(tmp_path / "features", works=2))
    windows = read_windows(shards)
    assert windows.pooled.shape == (24, 16) and windows.labels.sum() == 8
    assert windows.keys[0] == ("song0", 0) and windows.works[0] == "w0"
    relabelled = read_windows(shards, {("song0", 0): True, ("instr1", 5): False})
    assert relabelled.keys == (("song0", 0), ("instr1", 5))
    assert relabelled.labels.tolist() == [True, False]


def test_training_saves_what_loading_gives_back(tmp_path: Path) -> None:
    features = write_judged_shards(tmp_path / "features")
    run = tmp_path / "run"
    results = train_singing(features, run, TINY)
    assert [r.epoch for r in results] == [1, 2, 3, 4] and results[0].val_score is not None
    assert results[-1].train_loss < results[0].train_loss
    kind, values = read_run_config(run)
    assert kind == "singing" and values["input_dim"] == 8 and (run / LAST).exists()
    loaded = load_detector(detector_spec(str(run)))
    saved = load_checkpoint(run / BEST)["model"]
    for name, tensor in loaded.state_dict().items():
        torch.testing.assert_close(tensor, saved[name], rtol=0, atol=0)
    exported = tmp_path / "exported"
    export_detector(run, exported)
    states = [np.random.default_rng(1).standard_normal((12, 8)).astype(np.float16)] * 3
    np.testing.assert_array_equal(
        window_scores(load_detector(detector_spec(str(exported))), states),
        window_scores(loaded, states),
    )
    assert set(load_checkpoint(exported / BEST)) == {"model", "epoch", "step", "history"}
    again = train_singing(features, run, TINY)  # resumes: nothing left to train
    assert again == []


def test_training_refuses_shards_without_unsung_windows(tmp_path: Path) -> None:
    root = tmp_path / "features"
    meta = {"track_id": "a", "segment_index": 0, "work_id": "w", "singing": "sung"}
    arrays = {"encoder": np.zeros((4, 2), np.float16)}
    write_shard([ShardSample("part-00000/000000", meta, arrays)], root / "shards" / "part-0.tar")
    with pytest.raises(TrainingDataError, match="keep_unsung_states"):
        train_singing(root, tmp_path / "run", TINY)


def test_train_singing_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    features = write_judged_shards(tmp_path / "features", works=2)
    args = ["run", "train", "singing", "--shards", str(features), "--output", str(tmp_path / "r")]
    assert main([*args, "--preset", "small", "--epochs", "2"]) == 0
    assert "2 epoch(s) trained" in capsys.readouterr().out
    assert read_run_config(tmp_path / "r")[0] == "singing"


def test_the_shipped_detector_loads_and_is_small() -> None:
    detector = load_detector(detector_spec("default"))
    assert isinstance(detector, SingingDetector) and not detector.training
    assert detector.feature_mean.shape == (1024,)  # Whisper base: 512-wide states
    # 32 hidden units over 1024 pooled values: 33k float32 weights, no optimiser state
    assert sum(f.stat().st_size for f in DEFAULT_DETECTOR.iterdir()) < 200_000
    assert load_detector(detector_spec("none")) is None

"""The shared loop, through both real trainers: resume, checkpoints, NaN stop, mismatches."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from pipeline.io.run_dir import BEST, CONFIG_FILE, LAST, RunConfigMismatchError
from pipeline.train.livi import livi_preset, train_livi
from pipeline.train.loop import NonFiniteLossError
from pipeline.train.wealy import train_wealy, wealy_preset
from tests.feature_fixtures import write_tiny_features

LIVI = dataclasses.replace(livi_preset("small"), hidden_sizes=(16,), batch_size=5)
WEALY = dataclasses.replace(
    wealy_preset("small"), d_model=16, ffn_dim=32, output_dim=8, crop=8, works_per_batch=2
)

pytestmark = pytest.mark.timeout(60)  # each of these takes seconds
TRAINERS = {"livi": (train_livi, LIVI), "wealy": (train_wealy, WEALY)}


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_features(tmp_path_factory.mktemp("tiny") / "features", works=5)


class Interrupted(Exception):
    """Stands for a crash or a pre-emption in the middle of an epoch."""


@pytest.mark.parametrize("kind", ["livi", "wealy"])
def test_resume_takes_the_same_next_steps(kind: str, features: Path, tmp_path: Path) -> None:
    train, config = TRAINERS[kind]
    config = dataclasses.replace(config, epochs=3)
    straight: list[tuple[int, float]] = []
    train(features, tmp_path / "straight", config, lambda *s: straight.append(s))
    per_epoch = len(straight) // 3

    def crash_in_epoch_3(step: int, loss: float) -> None:
        if step > 2 * per_epoch:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(features, tmp_path / "resumed", config, crash_in_epoch_3)
    resumed: list[tuple[int, float]] = []
    results = train(features, tmp_path / "resumed", config, lambda *s: resumed.append(s))
    assert [r.epoch for r in results] == [3]
    assert len(resumed) == per_epoch and resumed == straight[-per_epoch:]  # bit-identical losses
    a = torch.load(tmp_path / "straight" / LAST, weights_only=True)
    b = torch.load(tmp_path / "resumed" / LAST, weights_only=True)
    assert a["step"] == b["step"] and a["epoch"] == b["epoch"] == 3
    for name, tensor in a["model"].items():
        torch.testing.assert_close(tensor, b["model"][name], rtol=0, atol=0)
    assert set(a) >= {"model", "optimizer", "scheduler", "rng", "step", "epoch", "history"}


def test_a_finished_run_trains_nothing_more(features: Path, tmp_path: Path) -> None:
    train_livi(features, tmp_path / "run", dataclasses.replace(LIVI, epochs=1))
    assert train_livi(features, tmp_path / "run", dataclasses.replace(LIVI, epochs=1)) == []
    document = json.loads((tmp_path / "run" / CONFIG_FILE).read_text())
    assert document["kind"] == "livi" and document["config"]["input_dim"] == 8
    assert (tmp_path / "run" / BEST).exists()


def test_other_settings_in_the_same_folder_are_refused(features: Path, tmp_path: Path) -> None:
    train_livi(features, tmp_path / "run", dataclasses.replace(LIVI, epochs=1))
    with pytest.raises(RunConfigMismatchError, match=r"lr: 0.001 -> 0.01"):
        train_livi(features, tmp_path / "run", dataclasses.replace(LIVI, epochs=2, lr=0.01))


def test_a_run_written_before_a_setting_existed_resumes(features: Path, tmp_path: Path) -> None:
    train_livi(features, tmp_path / "run", dataclasses.replace(LIVI, epochs=1))
    path = tmp_path / "run" / CONFIG_FILE
    document = json.loads(path.read_text())
    del document["config"]["centre_targets"]  # as an earlier version wrote it
    path.write_text(json.dumps(document))
    assert [
        r.epoch for r in train_livi(features, tmp_path / "run", dataclasses.replace(LIVI, epochs=2))
    ] == [2]
    with pytest.raises(RunConfigMismatchError, match=r"centre_targets: False -> True"):
        train_livi(
            features, tmp_path / "run", dataclasses.replace(LIVI, epochs=3, centre_targets=True)
        )


def test_nan_loss_stops_with_a_clear_error(tmp_path: Path) -> None:
    poisoned = write_tiny_features(tmp_path / "features", works=2, poison=float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 1, step 1"):
        train_livi(poisoned, tmp_path / "run", LIVI)
    assert not (tmp_path / "run" / LAST).exists()  # nothing non-finite was saved

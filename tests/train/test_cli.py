from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import ConfigError
from pipeline.train.cli import apply_overrides
from pipeline.train.livi import livi_preset
from tests.feature_fixtures import write_tiny_features

pytestmark = pytest.mark.timeout(60)  # each of these takes seconds


def test_overrides_are_typed_and_checked() -> None:
    config = apply_overrides(livi_preset("small"), ["hidden_sizes=[8, 8]", "lr=3e-4"])
    assert config.hidden_sizes == (8, 8) and config.lr == pytest.approx(3e-4)
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(config, ["no_such_field=1"])


def test_train_command_runs_and_reports_nan_as_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    features = write_tiny_features(tmp_path / "features", works=3)
    args = ["run", "train", "wealy", "--shards", str(features), "--preset", "small"]
    assert main([*args, "--output", str(tmp_path / "ok"), "--epochs", "2"]) == 0
    assert "2 epoch(s) trained" in capsys.readouterr().out
    assert (tmp_path / "ok" / "best.pt").exists() and list((tmp_path / "ok" / "logs").iterdir())
    poisoned = write_tiny_features(tmp_path / "poisoned", works=2, poison=float("nan"))
    livi = ["run", "train", "livi", "--shards", str(poisoned), "--output", str(tmp_path / "nan")]
    assert main([*livi, "--preset", "small"]) == 2
    assert "error: loss is nan at epoch 1, step 1" in capsys.readouterr().err

import io
from pathlib import Path

import pytest
from fsspec.core import url_to_fs

from pipeline.cli import main
from pipeline.config import ConfigError
from pipeline.io.run_dir import load_checkpoint
from pipeline.train.cli import apply_overrides
from pipeline.train.livi import livi_preset
from tests.feature_fixtures import write_tiny_features
from tests.s3_server import BUCKET, S3Server

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


def test_a_run_folder_in_a_bucket_resumes_and_names_its_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], s3_env: S3Server
) -> None:
    """``--output s3://...``: each epoch's files are uploaded, a second run resumes from the
    bucket's ``last.pt``, and what it refuses names the URL, never the scratch copy."""
    features = write_tiny_features(tmp_path / "features", works=3)
    url = f"s3://{BUCKET}/train-cli/wealy"
    args = ["run", "train", "wealy", "--shards", str(features), "--preset", "small"]
    assert main([*args, "--output", url, "--epochs", "1"]) == 0
    assert main([*args, "--output", url, "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert f"1 epoch(s) trained; run folder {url} (" in out and "at epoch 1, step" in out
    assert "pipeline-stage-" not in out  # the log names no scratch copy
    fs, base = url_to_fs(url)
    fs.invalidate_cache()
    assert len(load_checkpoint(io.BytesIO(fs.cat_file(f"{base}/last.pt")))["history"]) == 2
    logs = fs.ls(f"{base}/logs", detail=False)  # one per run id (to the second): 1 or 2
    assert "epoch 2/2" in fs.cat_file(sorted(logs)[-1]).decode()
    assert main([*args, "--output", url, "--set", "lr=0.5"]) == 2
    error = capsys.readouterr().err
    assert f"error: {url} holds a wealy run with other settings (lr:" in error
    assert "pipeline-stage-" not in error

"""``report.html`` of a training run (epochs and curves from ``last.pt``) and of evaluations
(the metrics table from the metrics files); the JSON run log of a training run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.io.run_dir import LAST, load_checkpoint
from pipeline.report import REPORT_FILE
from tests.conftest import run_cli
from tests.report.page import read_page

pytestmark = pytest.mark.integration


def _ok(*args: str) -> str:
    result = run_cli(*args, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _value(cell: str) -> float | None:
    return None if cell == "-" else float(cell)


def test_training_report_and_json_log(example_features: Path, tmp_path: Path) -> None:
    run = tmp_path / "wealy"
    common = ("--shards", str(example_features), "--output", str(run), "--preset", "small")
    out = _ok("run", "train", "wealy", *common, "--epochs", "2", "--log-format", "json")
    assert REPORT_FILE in out
    history = load_checkpoint(run / LAST)["history"]
    page = read_page(run / REPORT_FILE)
    assert page.sections == ["training"] and page.svgs == 1
    rows = page.rows("epochs")
    assert [int(r["epoch"]) for r in rows] == [h["epoch"] for h in history] == [1, 2]
    for row, epoch in zip(rows, history, strict=True):
        assert _value(row["train loss"]) == pytest.approx(epoch["train_loss"], abs=1e-4)
        assert _value(row["val_map"]) == pytest.approx(epoch["val_score"], abs=1e-4)
        assert row["best.pt"] == ("written" if epoch["best"] else "")

    (log_file,) = (run / "logs").glob("train-*.log")
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert records and all(r["run_id"] == log_file.stem for r in records)
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["message"].startswith("epoch 2/2") for r in records)

    _ok("run", "train", "wealy", *common, "--epochs", "3")  # resumed: the report has 3 epochs
    assert len(read_page(run / REPORT_FILE).rows("epochs")) == 3


def test_evaluation_report_lists_every_metrics_file(
    example_features: Path, example_dir: Path, tmp_path: Path
) -> None:
    catalog = str(example_dir / "catalog.csv")
    for model in ("whisper-avg", "transcript-text"):
        embeddings = str(tmp_path / f"{model}.parquet")
        features = str(example_features)
        _ok("run", "embed", "--model", model, "--input", features, "--output", embeddings)
        evaluate = ("run", "evaluate", "--embeddings", embeddings, "--catalog", catalog)
        result = run_cli(*evaluate, "--log-format", "json", timeout=300)
        assert result.returncode == 0, result.stderr
        for line in result.stderr.splitlines():  # JSON lines only, if any
            assert json.loads(line)["run_id"].startswith("evaluate-")
    page = read_page(tmp_path / REPORT_FILE)
    assert page.sections == ["evaluation"]
    shown = {r["file"]: r for r in page.rows("metrics")}
    assert sorted(shown) == ["transcript-text.metrics.json", "whisper-avg.metrics.json"]
    for name, row in shown.items():
        metrics = json.loads((tmp_path / name).read_text())
        assert row["embeddings"] == Path(metrics["embeddings"]).name
        assert row["scoring"] == metrics["scoring"] == "track vectors"
        counts = ("catalog_tracks", "embedded_tracks", "missing_tracks", "queries")
        for key in (*counts, "map", "map_at_10", "mr1", "hr_at_1", "arp", "random_map"):
            assert _value(row[key]) == pytest.approx(metrics[key], abs=1e-4), key
        assert metrics["catalog_tracks"] == 10 and metrics["missing_track_ids"] == ["interlude"]

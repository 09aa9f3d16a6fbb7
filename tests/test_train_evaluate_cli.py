"""``pipeline run train|embed|evaluate`` and ``pipeline search`` on the real example features.

What this measures, honestly: the example has 9 ok tracks in 4 works. Each run holds one
multi-version work out of training (``split.json``); ``evaluate --holdout`` lets only that
work's versions query, against all 9 tracks. So the held-out MAP is on 2-3 queries of unseen
works, and beating the expected MAP of a random ranking is all that such a set can show.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.io.embeddings import read_embeddings
from tests.conftest import run_cli

pytestmark = pytest.mark.integration
EPOCHS = {"livi": "6", "wealy": "8"}


def _ok(*args: str) -> str:
    result = run_cli(*args, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def runs(example_features: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both models trained with the small preset, and their embeddings of the example."""
    root = tmp_path_factory.mktemp("runs")
    for model, epochs in EPOCHS.items():
        out = _ok(
            "run",
            "train",
            model,
            "--shards",
            str(example_features),
            "--output",
            str(root / model),
            "--preset",
            "small",
            "--epochs",
            epochs,
        )
        assert f"epoch {epochs}/{epochs}" in out and (root / model / "best.pt").exists()
        out = _ok(
            "run",
            "embed",
            "--model",
            str(root / model),
            "--input",
            str(example_features),
            "--output",
            str(root / f"{model}.parquet"),
            *(["--keep-windows"] if model == "wealy" else []),
        )
        assert "embedded    9 of 9 ok tracks" in out
    return root


def _evaluate(embeddings: Path, catalog: Path, *args: str) -> dict:
    output = embeddings.with_suffix(".test-metrics.json")
    _ok(
        "run",
        "evaluate",
        "--embeddings",
        str(embeddings),
        "--catalog",
        str(catalog),
        "--output",
        str(output),
        *args,
    )
    return json.loads(output.read_text())


@pytest.mark.parametrize("model", ["livi", "wealy"])
def test_held_out_map_beats_random(model: str, runs: Path, example_dir: Path) -> None:
    metrics = _evaluate(
        runs / f"{model}.parquet", example_dir / "catalog.csv", "--holdout", str(runs / model)
    )
    assert metrics["tracks"] == 9 and 2 <= metrics["queries"] <= 3
    assert metrics["map"] > metrics["random_map"], metrics


def test_window_scoring_fusion_and_search(
    runs: Path, example_dir: Path, example_features: Path
) -> None:
    catalog = example_dir / "catalog.csv"
    windowed = _evaluate(runs / "wealy.parquet", catalog, "--max-windows")
    assert windowed["scoring"] == "max over window pairs" and windowed["queries"] == 8
    text = runs / "text.parquet"
    _ok(
        "run",
        "embed",
        "--model",
        "transcript-text",
        "--input",
        str(example_features),
        "--output",
        str(text),
    )
    fused = _evaluate(runs / "wealy.parquet", catalog, "--fusion", str(text), "--weight", "1.5")
    assert fused["queries"] == 8 and fused["fusion"]["weight"] == 1.5
    found = _ok("search", "--embeddings", str(text), "--query", "river-es", "--k", "3")
    assert len(found.splitlines()) == 3 and "river-es" not in found


def test_livi_from_audio_matches_livi_from_shards(runs: Path, example_dir: Path) -> None:
    """Decode, segment, encoder only: the same vectors as from the extracted encoder states."""
    from_audio = runs / "livi-audio.parquet"
    out = _ok(
        "run",
        "embed",
        "--model",
        str(runs / "livi"),
        "--audio",
        str(example_dir / "catalog.csv"),
        "--output",
        str(from_audio),
    )
    assert "rejected    interlude" in out
    audio_ids, audio_vectors = read_embeddings(from_audio)
    shard_ids, shard_vectors = read_embeddings(runs / "livi.parquet")
    assert audio_ids == shard_ids
    np.testing.assert_allclose(np.sum(audio_vectors * shard_vectors, axis=1), 1.0, atol=1e-4)


def test_search_by_audio_file_finds_that_track_first(runs: Path, example_dir: Path) -> None:
    """An audio query is embedded by the LIVI run (encoder only) and ranked against the file."""
    audio = next((example_dir / "audio").glob("river-es.*"))
    found = _ok(
        "search",
        "--embeddings",
        str(runs / "livi.parquet"),
        "--query",
        str(audio),
        "--model",
        str(runs / "livi"),
        "--k",
        "3",
    )
    first = found.splitlines()[0].split()
    assert first[2] == "river-es" and float(first[1]) > 0.9999


def test_search_by_audio_file_needs_a_livi_run(runs: Path, example_dir: Path) -> None:
    audio = str(next((example_dir / "audio").glob("river-es.*")))
    embeddings = str(runs / "livi.parquet")
    result = run_cli("search", "--embeddings", embeddings, "--query", audio, timeout=60)
    assert result.returncode != 0 and "give --model" in result.stderr
    wealy = ("--model", str(runs / "wealy"))
    result = run_cli("search", "--embeddings", embeddings, "--query", audio, *wealy, timeout=120)
    assert result.returncode != 0 and "needs a LIVI run" in result.stderr

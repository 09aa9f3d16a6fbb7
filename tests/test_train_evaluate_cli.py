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


def test_train_embed_evaluate_search(
    example_dir: Path, example_features: Path, tmp_path: Path
) -> None:
    catalog = str(example_dir / "catalog.csv")
    for model, epochs in (("livi", "6"), ("wealy", "8")):
        run = tmp_path / model
        trained = run_cli(
            "run",
            "train",
            model,
            "--shards",
            str(example_features),
            "--output",
            str(run),
            "--preset",
            "small",
            "--epochs",
            epochs,
            timeout=120,
        )
        assert trained.returncode == 0, trained.stderr
        assert f"epoch {epochs}/{epochs}" in trained.stdout and (run / "best.pt").exists()
        embeddings = tmp_path / f"{model}.parquet"
        embedded = run_cli(
            "run",
            "embed",
            "--model",
            str(run),
            "--input",
            str(example_features),
            "--output",
            str(embeddings),
            *(["--keep-windows"] if model == "wealy" else []),
            timeout=120,
        )
        assert embedded.returncode == 0, embedded.stderr
        assert "embedded    9 of 9 ok tracks" in embedded.stdout
        metrics_file = tmp_path / f"{model}-holdout.json"
        evaluated = run_cli(
            "run",
            "evaluate",
            "--embeddings",
            str(embeddings),
            "--catalog",
            catalog,
            "--holdout",
            str(run),
            "--output",
            str(metrics_file),
            timeout=60,
        )
        assert evaluated.returncode == 0, evaluated.stderr
        metrics = json.loads(metrics_file.read_text())
        assert metrics["tracks"] == 9 and 2 <= metrics["queries"] <= 3
        assert metrics["map"] > metrics["random_map"], metrics

    # LIVI from the audio (encoder only) gives the embeddings it gives from the shards.
    from_audio = tmp_path / "livi-audio.parquet"
    direct = run_cli(
        "run",
        "embed",
        "--model",
        str(tmp_path / "livi"),
        "--audio",
        catalog,
        "--output",
        str(from_audio),
    )
    assert direct.returncode == 0, direct.stderr
    assert "rejected    interlude" in direct.stdout
    audio_ids, audio_vectors = read_embeddings(from_audio)
    shard_ids, shard_vectors = read_embeddings(tmp_path / "livi.parquet")
    assert audio_ids == shard_ids
    np.testing.assert_allclose(np.sum(audio_vectors * shard_vectors, axis=1), 1.0, atol=1e-4)

    baseline = tmp_path / "text.parquet"
    assert (
        run_cli(
            "run",
            "embed",
            "--model",
            "transcript-text",
            "--input",
            str(example_features),
            "--output",
            str(baseline),
        ).returncode
        == 0
    )
    fused = run_cli(
        "run",
        "evaluate",
        "--embeddings",
        str(tmp_path / "wealy.parquet"),
        "--catalog",
        catalog,
        "--fusion",
        str(baseline),
        "--weight",
        "1.5",
    )
    assert fused.returncode == 0, fused.stderr
    full = json.loads((tmp_path / "wealy.metrics.json").read_text())
    assert full["queries"] == 8 and full["fusion"]["weight"] == 1.5
    windowed = run_cli(
        "run",
        "evaluate",
        "--embeddings",
        str(tmp_path / "wealy.parquet"),
        "--catalog",
        catalog,
        "--max-windows",
    )
    assert windowed.returncode == 0, windowed.stderr
    scored = json.loads((tmp_path / "wealy.metrics.json").read_text())
    assert scored["scoring"] == "max over window pairs" and scored["queries"] == 8

    found = run_cli("search", "--embeddings", str(baseline), "--query", "river-es", "--k", "3")
    assert found.returncode == 0 and len(found.stdout.splitlines()) == 3
    assert "river-es" not in found.stdout

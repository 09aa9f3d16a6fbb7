"""``pipeline run train|embed|evaluate`` and ``pipeline search`` on the real example features.

These tests check plumbing: what each command writes and which tracks it ranks. They assert no
ranking quality: a smoke-sized training's MAP flips with floating-point rounding on another CPU
(it did on AVX-512). Quality is measured by ``benchmarks/retrieval.py``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.io.catalog import read_catalog
from pipeline.io.embeddings import read_embeddings
from pipeline.io.parquet import read_table
from pipeline.report import REPORT_FILE
from tests.conftest import run_cli, run_extract
from tests.report.page import read_page

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
        tracks = read_table(example_features / "tracks", "tracks").to_pylist()
        ok = sum(t["status"] == "ok" for t in tracks)
        assert f"embedded    {ok} of {ok} ok tracks" in out
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


def _queries(catalog: Path, only_works: set[str] | None = None) -> int:
    """Catalog tracks with another version of their work (vector or not): what evaluate
    queries, limited to ``only_works`` when given."""
    works = [e.work_id or e.track_id for e in read_catalog(catalog)]
    versions = Counter(works)
    return sum(1 for w in works if (only_works is None or w in only_works) and versions[w] > 1)


@pytest.mark.parametrize("model", ["livi", "wealy"])
def test_held_out_evaluation_queries_only_test_works(
    model: str, runs: Path, example_dir: Path
) -> None:
    """Plumbing, not quality: a smoke training's MAP flips with rounding on another CPU."""
    split = json.loads((runs / model / "split.json").read_text())
    train, val, test = (set(split[f"{k}_works"]) for k in ("train", "val", "test"))
    assert val and not (train & val or train & test or val & test)
    catalog = example_dir / "catalog.csv"
    embedded, _ = read_embeddings(runs / f"{model}.parquet")
    metrics = _evaluate(runs / f"{model}.parquet", catalog, "--holdout", str(runs / model))
    assert metrics["embedded_tracks"] == len(embedded)
    assert metrics["catalog_tracks"] == len(read_catalog(catalog))
    # Three works of several versions: validation takes one, training keeps two, so the test
    # works hold none and nothing is measured (tests/retrieval measures held-out queries).
    assert metrics["queries"] == _queries(catalog, test) == 0
    assert metrics["map"] is None and metrics["random_map"] is None


def test_window_scoring_fusion_and_search(
    runs: Path, example_dir: Path, example_features: Path
) -> None:
    catalog = example_dir / "catalog.csv"
    queries = _queries(catalog)
    windowed = _evaluate(runs / "wealy.parquet", catalog, "--max-windows")
    assert windowed["scoring"] == "max over window pairs" and windowed["queries"] == queries > 0
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
    assert fused["queries"] == queries and fused["fusion"]["weight"] == 1.5
    found = _ok("search", "--embeddings", str(text), "--query", "river-es", "--k", "3")
    assert len(found.splitlines()) == 3 and "river-es" not in found


@pytest.fixture(scope="module")
def livi_from_audio(runs: Path, example_dir: Path) -> Path:
    """``run embed --audio``: the example embedded by the LIVI run, in this one process, every
    window (``singing.detector: none``), as the shards' vectors are compared with it."""
    from_audio = runs / "livi-audio.parquet"
    settings = runs / "every-window.yaml"
    settings.write_text("singing:\n  detector: none\n")
    _ok(
        "run",
        "embed",
        "--model",
        str(runs / "livi"),
        "--audio",
        str(example_dir / "catalog.csv"),
        "--output",
        str(from_audio),
        "--config",
        str(settings),
    )
    return from_audio


def test_livi_from_audio_matches_livi_from_shards(
    runs: Path, livi_from_audio: Path, example_features: Path
) -> None:
    """Decode, segment, encoder only: the same vectors as from the extracted encoder states
    wherever every window was sung. Without the singing detector the audio path embeds
    tracks and windows that extraction judged unsung too (the instrumental interlude)."""
    audio = dict(zip(*read_embeddings(livi_from_audio), strict=True))
    shards = dict(zip(*read_embeddings(runs / "livi.parquet"), strict=True))
    assert set(shards) < set(audio) and "interlude" in audio
    segments = read_table(example_features / "segments", "segments").to_pylist()
    unsung = {s["track_id"] for s in segments if s["singing"] != "sung"}
    compared = sorted(set(shards) - unsung)
    assert len(compared) >= 5, unsung
    for track_id in compared:
        assert float(np.dot(audio[track_id], shards[track_id])) == pytest.approx(1.0, abs=1e-4)


def test_livi_only_extraction_on_dask_equals_embed_audio_and_resumes(
    runs: Path, livi_from_audio: Path, example_dir: Path, tmp_path: Path
) -> None:
    """``run extract --livi-run``: the LocalCluster workers give each track the vector the
    one-process path gives it, write no transcripts or shards, and a re-run after a lost
    partition redoes only that partition, to the same embeddings file."""
    catalog = example_dir / "catalog.csv"
    out = tmp_path / "livi-only"
    livi = ("--livi-run", str(runs / "livi"), "--partition-size", "4")
    livi += ("--set", "singing.detector=none")  # every window, as livi_from_audio
    result = run_extract(catalog, out, *livi)
    assert result.returncode == 0, result.stderr
    ids, vectors = read_embeddings(out / "embeddings.parquet")
    expected_ids, expected = read_embeddings(livi_from_audio)
    assert ids == expected_ids == [e.track_id for e in read_catalog(catalog)]
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    assert not (out / "segments").exists() and not (out / "shards").exists()
    tracks = read_table(out / "tracks", "tracks").to_pylist()
    assert [t["status"] for t in tracks] == ["ok"] * len(ids)
    assert all(t["segment_count"] > 0 and t["language"] is None for t in tracks)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and "livi" in manifest["models"]
    page = read_page(out / REPORT_FILE)  # no transcripts: no languages, windows only
    assert page.sections == ["tracks", "rejected", "segments", "throughput", "cluster"]
    (windows,) = page.rows("segment-distributions")
    assert int(windows["count"]) == len(tracks)

    before = (out / "embeddings.parquet").read_bytes()
    (out / "_complete" / "part-00001.json").unlink()  # as if the run died writing it
    (out / "embeddings" / "part-00001.parquet").unlink()
    result = run_extract(catalog, out, *livi)
    assert result.returncode == 0, result.stderr
    assert "resumed     2 partition(s)" in result.stdout
    assert "processed   4 track(s)" in result.stdout
    assert (out / "embeddings.parquet").read_bytes() == before


def test_livi_only_extraction_rejects_what_the_detector_hears_no_singing_in(
    runs: Path, example_dir: Path, tmp_path: Path
) -> None:
    """By default the shipped singing detector picks the windows to embed: the instrumental
    interlude is rejected ``no_singing`` with the detector's scores, as extraction rejects it."""
    result = run_extract(example_dir / "catalog.csv", tmp_path, "--livi-run", str(runs / "livi"))
    assert result.returncode == 0, result.stderr
    tracks = {t["track_id"]: t for t in read_table(tmp_path / "tracks", "tracks").to_pylist()}
    interlude = tracks["interlude"]
    assert (interlude["status"], interlude["stage"], interlude["reason"]) == (
        "rejected",
        "singing",
        "no_singing",
    )
    assert "probability of singing" in interlude["detail"]
    ids, _ = read_embeddings(tmp_path / "embeddings.parquet")
    assert ids == [t for t, row in tracks.items() if row["status"] == "ok"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert "singing_detector" in manifest["models"]


def test_livi_only_extraction_refuses_a_wealy_run(
    runs: Path, example_dir: Path, tmp_path: Path
) -> None:
    result = run_extract(example_dir / "catalog.csv", tmp_path, "--livi-run", str(runs / "wealy"))
    assert result.returncode == 2
    assert "is a wealy run; LIVI embeddings need a LIVI run" in result.stderr


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
    assert result.returncode != 0 and "need a LIVI run" in result.stderr

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import TextEmbedConfig
from pipeline.io.embeddings import read_embeddings, read_windows
from pipeline.io.webdataset import iter_folder
from pipeline.retrieval.embed import run_embed, sung_transcripts
from pipeline.stages.embed_text import embed_document
from pipeline.train.livi import livi_preset, train_livi
from pipeline.train.wealy import train_wealy, wealy_preset
from tests.feature_fixtures import write_tiny_features

pytestmark = pytest.mark.timeout(60)  # each of these takes seconds


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "features"
    return write_tiny_features(root, works=3, without_text=frozenset({"w2-0"}))


def _expected_means(features: Path, member: str) -> dict[str, np.ndarray]:
    rows: dict[str, list[np.ndarray]] = {}
    for sample in iter_folder(features):
        if member in sample.arrays:
            array = sample.arrays[member].astype(np.float64)
            rows.setdefault(sample.meta["track_id"], []).extend(array.reshape(-1, array.shape[-1]))
    means = {t: np.mean(r, axis=0) for t, r in rows.items()}
    return {t: m / np.linalg.norm(m) for t, m in means.items()}


def test_whisper_avg_is_the_normalised_mean(features: Path, tmp_path: Path) -> None:
    summary = run_embed("whisper-avg", features, tmp_path / "e.parquet")
    ids, vectors = read_embeddings(tmp_path / "e.parquet")
    expected = _expected_means(features, "decoder")
    assert "rejected" not in ids and summary.ok_tracks == 9
    assert len(ids) == summary.embedded == len(expected)
    for track_id, vector in zip(ids, vectors, strict=True):
        np.testing.assert_allclose(vector, expected[track_id], rtol=1e-5, atol=1e-6)


def test_transcript_text_embeds_the_sung_transcript_whole(features: Path, tmp_path: Path) -> None:
    summary = run_embed("transcript-text", features, tmp_path / "t.parquet")
    ids, vectors = read_embeddings(tmp_path / "t.parquet")
    # w2-0's windows have no text target: reported, not embedded
    assert summary.without_embedding == ("w2-0",) and len(ids) == summary.embedded == 8
    texts = sung_transcripts(features)
    assert texts["w1-2"] == "song 1 sings line 0 of its lyrics song 1 sings line 1 of its lyrics"
    assert vectors.shape == (8, 384)
    for track_id in ("w0-0", "w1-2"):  # the encoder is slow on a busy CPU: two tracks
        expected = embed_document(texts[track_id], TextEmbedConfig())
        np.testing.assert_allclose(vectors[ids.index(track_id)], expected, rtol=1e-5, atol=1e-6)


def test_trained_runs_embed_every_ok_track(features: Path, tmp_path: Path) -> None:
    livi = dataclasses.replace(livi_preset("small"), hidden_sizes=(16,), epochs=1)
    wealy = dataclasses.replace(
        wealy_preset("small"), d_model=16, ffn_dim=32, output_dim=8, crop=8, epochs=1
    )
    train_livi(features, tmp_path / "livi", livi)
    train_wealy(features, tmp_path / "wealy", dataclasses.replace(wealy, val_fraction=0.0))
    for run, width in (("livi", 6), ("wealy", 8)):
        summary = run_embed(
            str(tmp_path / run), features, tmp_path / f"{run}.parquet", keep_windows=run == "wealy"
        )
        ids, vectors = read_embeddings(tmp_path / f"{run}.parquet")
        assert summary.without_embedding == () and len(ids) == 9  # LIVI needs no text target
        assert vectors.shape == (9, width)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    windows = read_windows(tmp_path / "wealy.parquet")
    assert [w.shape for w in windows] == [(17, 8)] * 9  # 24 states, windows of 8, hop 1
    mean = windows[0].mean(axis=0)
    np.testing.assert_allclose(mean / np.linalg.norm(mean), vectors[0], rtol=1e-5, atol=1e-6)

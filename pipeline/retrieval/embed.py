"""One L2-normalised embedding per ok track, from a trained run or a training-free baseline.

- a LIVI run: the mean of its segment embeddings (encoder states only: no transcript needed);
- a WEALY run: the mean of the embeddings of windows of ``crop`` decoder states overlapping by
  90%. The paper instead scores a pair of tracks by the maximum cosine over their window pairs:
  ``keep_windows`` stores the windows too, for ``evaluate --max-windows``;
- ``whisper-avg``: the mean of all decoder states of the track (WEALY's Whisper-AvgEmb);
- ``transcript-text``: the track's sung transcript (the windows that have a text target, in
  order) embedded as one text in the encoder's 512-token chunks (transcribe, then embed).

A track with nothing to embed (no decoder state, no text target) gets no row; callers report it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.config import TextEmbedConfig
from pipeline.io.embeddings import write_embeddings
from pipeline.io.object_store import is_url, join
from pipeline.io.parquet import read_table
from pipeline.io.webdataset import iter_folder, list_shards
from pipeline.metrics import RetrievalInputError
from pipeline.models.livi import LiviModel, livi_segment_embeddings
from pipeline.retrieval.baselines import BASELINES
from pipeline.stages.embed_text import clean_transcript, embed_document
from pipeline.train.data import index_tracks
from pipeline.train.trained import load_run
from pipeline.train.wealy import WealyModel, embed_track

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedSummary:
    ok_tracks: int
    embedded: int
    without_embedding: tuple[str, ...]  # ok tracks with nothing to embed


class TrackMeans:
    """Running sums per track, so segments can stream past in any order."""

    def __init__(self) -> None:
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}

    def add(self, track_id: str, total: np.ndarray, count: int) -> None:
        if count == 0:
            return
        self.sums[track_id] = self.sums.get(track_id, 0.0) + total.astype(np.float64)
        self.counts[track_id] = self.counts.get(track_id, 0) + count

    def normalised(self) -> dict[str, np.ndarray]:
        out = {}
        for track_id, total in self.sums.items():
            mean = total / self.counts[track_id]
            out[track_id] = (mean / np.linalg.norm(mean)).astype(np.float32)
        return out


def _livi(model: LiviModel, features_dir: Path) -> dict[str, np.ndarray]:
    means = TrackMeans()
    segments = (
        (s.meta["track_id"], s.arrays["encoder"])
        for s in iter_folder(features_dir, frozenset({"encoder"}))
        # not a window judged unsung, kept for the detector; not a track outside
        # encoder_states_share (its LIVI embedding comes from extract --livi-run)
        if not s.meta.get("detector_only") and "encoder" in s.arrays
    )
    for track_id, embedding in livi_segment_embeddings(model, segments):
        means.add(track_id, embedding, 1)
    return means.normalised()


def _wealy(
    model: WealyModel, config: dict, features_dir: Path, keep_windows: bool
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    embeddings, windows = {}, {}
    for track in index_tracks(list_shards(features_dir)):
        embedding, track_windows = embed_track(
            model, track.load_states(), config["crop"], config["window_overlap"]
        )
        embeddings[track.track_id] = embedding
        if keep_windows:
            windows[track.track_id] = track_windows
    return embeddings, windows


def _whisper_avg(features_dir: Path) -> dict[str, np.ndarray]:
    means = TrackMeans()
    for sample in iter_folder(features_dir, frozenset({"decoder"})):
        if sample.meta.get("detector_only"):  # judged unsung, kept for the detector
            continue
        rows = sample.arrays.get("decoder")
        if rows is not None:
            means.add(sample.meta["track_id"], rows.astype(np.float32).sum(axis=0), len(rows))
    return means.normalised()


def sung_transcripts(features_dir: Path) -> dict[str, str]:
    """track_id -> the clean transcripts of its windows that have a text target (sung, at least
    ``min_words``), joined in window order."""
    windows: dict[str, list[tuple[int, str]]] = {}
    for sample in iter_folder(features_dir, frozenset({"text"})):
        if sample.meta.get("detector_only") or "text" not in sample.arrays:
            continue
        text = clean_transcript(sample.meta["transcript"])
        windows.setdefault(sample.meta["track_id"], []).append((sample.meta["segment_index"], text))
    return {t: " ".join(text for _, text in sorted(w)) for t, w in windows.items()}


def _transcript_text(features_dir: Path) -> dict[str, np.ndarray]:
    """Each track's sung transcript as one document: its windows' texts averaged piece by
    piece lose to the whole text (docs/benchmarks.md#teacher)."""
    vectors = {
        t: embed_document(text, TextEmbedConfig())
        for t, text in sung_transcripts(features_dir).items()
    }
    return {t: v for t, v in vectors.items() if v is not None}


def ok_track_ids(features_dir: Path | str) -> list[str]:
    if is_url(features_dir):
        from fsspec.core import url_to_fs

        folder: Path | str = join(features_dir, "tracks")
        fs, path = url_to_fs(str(folder))
        found = fs.isdir(path)
    else:
        folder = Path(features_dir) / "tracks"
        found = folder.is_dir()
    if not found:
        raise RetrievalInputError(f"{features_dir}: no tracks/ table; is it an extraction output?")
    tracks = read_table(folder, "tracks", ["track_id", "status"]).to_pylist()
    return [t["track_id"] for t in tracks if t["status"] == "ok"]


def compute_embeddings(
    model: str, features_dir: Path, device: str = "cpu", keep_windows: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(track_id -> embedding, track_id -> (w, e) windows) for ``model`` = a run folder or one
    of ``BASELINES``; windows only for a WEALY run with ``keep_windows``."""
    baseline = model in BASELINES
    if not baseline and not Path(model).is_dir():
        raise RetrievalInputError(
            f"--model {model}: neither a training run folder nor a zero-shot method; "
            f"pass a folder made by `pipeline run train`, or {' or '.join(BASELINES)}"
        )
    network, config = (None, {}) if baseline else load_run(Path(model), torch.device(device))
    if keep_windows and not isinstance(network, WealyModel):
        raise RetrievalInputError("--keep-windows needs a WEALY run")
    if isinstance(network, WealyModel):
        return _wealy(network, config, features_dir, keep_windows)
    if isinstance(network, LiviModel):
        return _livi(network, features_dir), {}
    if network is not None:
        raise RetrievalInputError(f"--model {model} is a {config['kind']} run: it embeds nothing")
    if model == "whisper-avg":
        return _whisper_avg(features_dir), {}
    return _transcript_text(features_dir), {}


def run_embed(
    model: str, features_dir: Path, output: Path, device: str = "cpu", keep_windows: bool = False
) -> EmbedSummary:
    """Embed every ok track of ``features_dir`` into the Parquet file ``output``."""
    ok = ok_track_ids(features_dir)
    embeddings, windows = compute_embeddings(model, features_dir, device, keep_windows)
    write_embeddings(embeddings, ok, output, windows)
    missing = tuple(t for t in ok if t not in embeddings)
    if missing:
        log.warning("%d ok track(s) have nothing to embed: %s", len(missing), ", ".join(missing))
    return EmbedSummary(len(ok), len(ok) - len(missing), missing)

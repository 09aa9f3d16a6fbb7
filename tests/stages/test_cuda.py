"""The GPU path: float16 Whisper and the PyTorch decoder on CUDA, batched like on the CPU.

These run where a CUDA device exists and are skipped with the reason elsewhere; on a machine
without one, the run must stop with one clear line instead."""

from pathlib import Path

import pytest
import torch

from pipeline.config import ExtractConfig, WhisperConfig
from pipeline.io.catalog import read_catalog
from pipeline.models.whisper_runtime import ModelError, load_whisper
from pipeline.records import SegmentedTrack, TrackFeatures
from pipeline.track import extract_track, extract_tracks, prepare_track

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device here; runs where there is one")
CUDA_CONFIG = ExtractConfig(whisper=WhisperConfig(device="cuda"))


@pytest.mark.skipif(CUDA, reason="this machine has a CUDA device")
def test_cuda_without_a_device_is_one_clear_error() -> None:
    with pytest.raises(ModelError, match="sees no CUDA device"):
        load_whisper(WhisperConfig(device="cuda"))


@pytest.fixture(scope="module")
def cuda_tracks(example_dir: Path) -> list:
    entries = [e for e in read_catalog(example_dir / "catalog.csv") if e.work_id == "river"]
    tracks = [prepare_track(e, CUDA_CONFIG) for e in entries]
    return [t for t in tracks if isinstance(t, SegmentedTrack)]


@needs_cuda
def test_cuda_runs_float16_and_puts_the_decoder_on_the_gpu() -> None:
    runtime = load_whisper(CUDA_CONFIG.whisper)
    assert CUDA_CONFIG.whisper.resolved_compute_type() == "float16"
    assert runtime.torch_device.type == "cuda"
    assert next(runtime.decoder.parameters()).device.type == "cuda"


@needs_cuda
def test_cuda_batch_gets_the_tokens_of_each_track_alone(cuda_tracks: list) -> None:
    """The shipped path (``extract_tracks``): tracks sharing a GPU batch get each window's
    tokens of the track alone."""
    together = extract_tracks(cuda_tracks, CUDA_CONFIG)
    alone = [extract_tracks([t], CUDA_CONFIG)[0] for t in cuda_tracks]
    assert all(isinstance(t, TrackFeatures) for t in together)
    for got, expected in zip(together, alone, strict=True):
        assert [s.transcript.tokens for s in got.segments] == [
            s.transcript.tokens for s in expected.segments
        ]
        assert all(s.encoder_states.shape == (1500, 512) for s in got.segments)


@needs_cuda
def test_cuda_extract_track_keeps_every_feature(example_dir: Path) -> None:
    entry = read_catalog(example_dir / "catalog.csv")[0]
    features = extract_track(prepare_track(entry, CUDA_CONFIG), CUDA_CONFIG)
    assert isinstance(features, TrackFeatures) and features.segments
    for segment in features.segments:
        assert segment.encoder_states.shape == (1500, 512)
        assert segment.decoder_states.shape[0] == (
            len(segment.transcript.tokens) if segment.sung else 0
        )

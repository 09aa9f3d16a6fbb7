"""Separation in blocks: tiling, resampling both ways, determinism and bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import soundfile
from fsspec.core import url_to_fs

from pipeline.config import ExtractConfig, SeparateConfig
from pipeline.models.separator import load_separator
from pipeline.records import CatalogEntry, DecodedAudio
from pipeline.stages.separate import (
    blocks,
    separate_vocals,
    stem_path,
    vocal_stem,
    write_stem,
)
from tests.s3_server import BUCKET, S3Server
from tests.separator_fixtures import PassThrough

RATE = 16_000


@pytest.mark.parametrize("total, block, margin", [(10, 3, 1), (9, 3, 0), (5, 10, 2), (1, 1, 5)])
def test_blocks_keep_every_sample_once_with_context(total: int, block: int, margin: int) -> None:
    spans = blocks(total, block, margin)
    kept = [i for _, _, start, end in spans for i in range(start, end)]
    assert kept == list(range(total))
    for lo, hi, start, end in spans:
        assert lo == max(0, start - margin) and hi == min(total, end + margin)
        assert hi - lo <= block + 2 * margin


def _tones(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    tones = sum(np.sin(2 * np.pi * f * t) / (i + 1) for i, f in enumerate((220, 1_000, 3_100)))
    return (0.2 * tones + 0.05).astype(np.float32)  # an offset: the normalisation is undone


def test_resampling_and_blocks_return_the_signal_where_it_was() -> None:
    samples = _tones(20.0)
    stem = vocal_stem(samples, RATE, PassThrough(), block_s=6.0)
    assert stem.shape == samples.shape and stem.dtype == np.float32
    inner = slice(RATE // 10, -RATE // 10)  # resampling filters ring at the very ends
    assert np.max(np.abs(stem[inner] - samples[inner])) < 0.01


def test_the_tiny_htdemucs_separates_deterministically(tiny_htdemucs: Path) -> None:
    model = load_separator(str(tiny_htdemucs))
    samples = _tones(8.0)
    first = vocal_stem(samples, RATE, model, block_s=4.0)
    assert first.shape == samples.shape and np.isfinite(first).all()
    assert np.array_equal(first, vocal_stem(samples, RATE, model, block_s=4.0))


def test_stems_are_flac_at_the_track_rate(tmp_path: Path) -> None:
    stem = _tones(2.0)
    write_stem(tmp_path, "a/b c", stem, RATE)
    path = stem_path(tmp_path, "a/b c")
    assert path.parent == tmp_path / "stems" and "/" not in path.name
    data, rate = soundfile.read(path, dtype="float32")
    assert rate == RATE and data.shape == stem.shape
    assert np.max(np.abs(data - stem)) < 1e-3  # 16-bit PCM
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_kept_stems_of_a_bucket_output_are_objects_in_that_bucket(
    s3_env: S3Server, tiny_htdemucs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a local folder named ``s3:`` in the worker's directory: the stem goes through the
    output's store, the bytes a local output would hold."""
    monkeypatch.chdir(tmp_path)
    url = f"s3://{BUCKET}/with-stems"
    separate = SeparateConfig(method="htdemucs", weights=str(tiny_htdemucs), keep_stems=True)
    audio = DecodedAudio(CatalogEntry("a/b c", "a.wav", 2), _tones(2.0), RATE, 2.0, False, "")
    vocals = separate_vocals(audio, ExtractConfig(output=url, separate=separate))
    write_stem(tmp_path / "local", "a/b c", vocals.samples, RATE)
    local = stem_path(tmp_path / "local", "a/b c")
    fs, base = url_to_fs(url)
    fs.invalidate_cache()
    keys = fs.ls(f"{base}/stems", detail=False)
    assert [PurePosixPath(k).name for k in keys] == [local.name]
    assert fs.cat_file(keys[0]) == local.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["local"]  # nothing named s3: here


_PEAK_RSS = """
import json, resource, sys
import numpy as np
from pipeline.stages.separate import vocal_stem
from tests.separator_fixtures import PassThrough
samples = np.random.default_rng(0).normal(0, 0.1, int(float(sys.argv[1]) * 16000))
samples = samples.astype(np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
vocal_stem(samples, 16000, PassThrough(), block_s=30.0)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (after - before) / 1024}))
"""


def _peak_growth_mb(seconds: float) -> float:
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(seconds)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return json.loads(result.stdout.splitlines()[-1])["growth_mb"]


def test_memory_does_not_grow_with_the_track() -> None:
    """Five minutes peak like one: only the track and its stem (19 MB each) grow with it.
    Separated at once, the track's 4 sources at 44.1 kHz stereo alone would take 340 MB more.
    The model's own activations are bounded by demucs's 7.8 s chunks, whatever the block."""
    short = _peak_growth_mb(60.0)
    long = _peak_growth_mb(300.0)
    assert long - short < 100, (short, long)

"""Log-mel features and Whisper encoder hidden states for a batch of 30 s segments."""

from __future__ import annotations

import functools

import ctranslate2
import numpy as np
from threadpoolctl import ThreadpoolController

from pipeline.models.whisper_runtime import WhisperRuntime
from pipeline.records import AudioSegment

N_FRAMES = 3000  # mel frames in Whisper's 30 s window


def log_mel(segments: list[AudioSegment], runtime: WhisperRuntime) -> np.ndarray:
    """(B, n_mels, 3000) float32 log-mel spectrograms, with the model's own mel count.

    One BLAS thread, always: OpenBLAS rounds the mel projection differently with more threads,
    and that one-ulp change moves int8 encoder states enough to change transcripts. Dask
    workers get one BLAS thread, the CLI process (``embed --audio``, ``search``) all cores; a
    track's features must not depend on which process computed them.
    """
    with _blas().limit(limits=1, user_api="blas"):
        mels = [runtime.feature_extractor(s.samples)[:, :N_FRAMES] for s in segments]
    padded = [np.pad(m, ((0, 0), (0, N_FRAMES - m.shape[1]))) for m in mels]
    return np.ascontiguousarray(np.stack(padded), dtype=np.float32)


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()  # inspecting the loaded libraries costs ~10 ms: once


def encode(mels: np.ndarray, runtime: WhisperRuntime) -> np.ndarray:
    """(B, L, d) float32 encoder states from CTranslate2's ``encode`` (L = 1500 for 30 s)."""
    if mels.ndim != 3:
        raise ValueError(f"mels must be (B, n_mels, frames), got shape {mels.shape}")
    output = runtime.model.encode(ctranslate2.StorageView.from_array(mels), to_cpu=True)
    return np.array(output, dtype=np.float32)

"""Vocal separation with HTDemucs, so that the detector and Whisper hear the voice, not the band.

``none`` (the default) passes the mixture through, as WEALY's and LIVI's references do.
``htdemucs`` runs the model given by ``separate.weights`` on the decoded 16 kHz mono track: up-
sampled to the model's rate and channels, separated in blocks of ``block_s`` seconds with
``MARGIN_S`` of context on each side (so memory is bounded whatever the track's length, and
no block edge is heard), the vocal source down-mixed and resampled back to 16 kHz. The track
is normalised once, as demucs does, so every block has the same gain.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import quote

import julius
import numpy as np
import soundfile
import torch
from demucs.apply import apply_model

from pipeline.config import ExtractConfig, SeparateConfig
from pipeline.io.atomic import atomic_path
from pipeline.io.object_store import output_dir_for
from pipeline.models.separator import load_separator
from pipeline.records import DecodedAudio

MARGIN_S = 3.0  # context each side of a block; dropped after separation
STEMS_DIR = "stems"


def blocks(total: int, block: int, margin: int) -> list[tuple[int, int, int, int]]:
    """(lo, hi, start, end): separate samples [lo, hi), keep [start, end); keeps tile [0, total)."""
    spans = []
    for start in range(0, total, block):
        end = min(total, start + block)
        spans.append((max(0, start - margin), min(total, end + margin), start, end))
    return spans


@torch.inference_mode()
def vocal_stem(
    samples: np.ndarray, rate: int, model: torch.nn.Module, block_s: float, device: str = "cpu"
) -> np.ndarray:
    """The vocal source of mono ``samples`` at ``rate``: same length, rate and dtype."""
    signal = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    mean, std = float(signal.mean()), float(signal.std()) + 1e-8
    vocals = model.sources.index("vocals")
    stem = np.empty_like(samples, dtype=np.float32)
    margin = round(MARGIN_S * rate)
    for lo, hi, start, end in blocks(len(samples), max(1, round(block_s * rate)), margin):
        mix = julius.resample_frac((signal[lo:hi] - mean) / std, rate, model.samplerate)
        mix = mix.expand(model.audio_channels, -1)[None]  # (1, channels, time)
        sources = apply_model(model, mix, shifts=0, split=True, overlap=0.25, device=device)
        voice = julius.resample_frac(sources[0, vocals].mean(0).cpu(), model.samplerate, rate)
        voice = torch.nn.functional.pad(voice, (0, max(0, hi - lo - len(voice))))
        stem[start:end] = voice[start - lo : end - lo].numpy()
    stem *= std
    stem += mean
    return stem


def separate_vocals(audio: DecodedAudio, config: ExtractConfig, threads: int = 0) -> DecodedAudio:
    """The vocal stem of ``audio`` (the mixture itself for ``method: none``)."""
    separate: SeparateConfig = config.separate
    if separate.method == "none":
        return audio
    if threads:
        torch.set_num_threads(threads)
    device = config.whisper.device
    model = load_separator(separate.weights, device, separate.weights_sha256)
    stem = vocal_stem(audio.samples, audio.sample_rate_hz, model, separate.block_s, device)
    if separate.keep_stems:
        write_stem(config.output, audio.entry.track_id, stem, audio.sample_rate_hz)
    return dataclasses.replace(audio, samples=stem)


def stem_rel(track_id: str) -> str:
    """``stems/<track_id>.flac``, the id percent-encoded where it is not a safe file name."""
    return f"{STEMS_DIR}/{quote(track_id, safe='')}.flac"


def stem_path(output: Path, track_id: str) -> Path:
    """Where a local output folder keeps the stem of ``track_id``."""
    return output / stem_rel(track_id)


def write_stem(output: str | Path, track_id: str, stem: np.ndarray, rate: int) -> None:
    """The stem as FLAC in ``--output``, a folder or an object store prefix, committed whole:
    atomically in a folder, in one upload to a store. A re-run overwrites it, never half."""

    def write(path: Path) -> None:
        with atomic_path(path) as tmp:
            soundfile.write(tmp, np.clip(stem, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")

    output_dir_for(output).commit_file(stem_rel(track_id), write)

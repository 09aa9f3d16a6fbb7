"""Real audio for tests, synthesised on the spot with espeak-ng and ffmpeg."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np


def espeak(text: str, target: Path, voice: str = "en") -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(target), text], check=True)
    return target


def ffmpeg_convert(
    source: Path, target: Path, rate: int | None = None, channels: int | None = None
) -> Path:
    args = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(source)]
    if rate:
        args += ["-ar", str(rate)]
    if channels:
        args += ["-ac", str(channels)]
    subprocess.run([*args, str(target)], check=True)
    return target


def write_float_wav(target: Path, samples: np.ndarray, rate: int) -> Path:
    """IEEE-float WAV (format 3), which can hold NaN and Inf; samples shaped (n, channels)."""
    data = np.asarray(samples, dtype="<f4")
    if data.ndim == 1:
        data = data[:, None]
    channels = data.shape[1]
    payload = data.tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(payload)) + b"WAVE"
    header += b"fmt " + struct.pack(
        "<IHHIIHH", 16, 3, channels, rate, rate * 4 * channels, 4 * channels, 32
    )
    header += b"data" + struct.pack("<I", len(payload))
    target.write_bytes(header + payload)
    return target

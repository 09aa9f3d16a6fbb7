"""Decode any common container to mono float32 at the model's rate, streaming.

Decoding stops after ``max_duration_s``, so a three-hour file costs no more memory than a
five-minute one. Whatever FFmpeg (through PyAV) can open is accepted: wav, flac, mp3, ogg,
m4a, and fsspec URLs.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Collection
from contextlib import ExitStack
from typing import IO

import av
import fsspec
import numpy as np

from pipeline.config import DecodeConfig
from pipeline.io.protocols import forbidden_protocol
from pipeline.records import CatalogEntry, DecodedAudio, Rejected

STAGE = "decode"
_NOT_FOUND = "no such file; fix audio_path in the catalog"
_NO_PERMISSION = "cannot read; check the file's permissions"


def _reject(entry: CatalogEntry, reason: str, detail: str) -> Rejected:
    return Rejected(entry.track_id, STAGE, reason, f"{entry.audio_path}: {detail}")


def _check_local_file(entry: CatalogEntry) -> Rejected | None:
    path = entry.audio_path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return _reject(entry, "file_not_found", _NOT_FOUND)
    except PermissionError:
        return _reject(entry, "permission_denied", _NO_PERMISSION)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return _reject(entry, "symlink_loop", "symbolic link loop; fix the link")
        return _reject(entry, "unreadable", str(e))
    if os.path.isdir(path):
        return _reject(entry, "not_a_file", "is a directory; audio_path must name a file")
    if st.st_size == 0:
        return _reject(entry, "empty_file", "zero-byte file; re-export the audio")
    if not os.access(path, os.R_OK):
        return _reject(entry, "permission_denied", _NO_PERMISSION)
    return None


def _source(entry: CatalogEntry, stack: ExitStack) -> str | IO[bytes]:
    if "://" in entry.audio_path:
        return stack.enter_context(fsspec.open(entry.audio_path, "rb"))
    return entry.audio_path


def decode_audio(
    entry: CatalogEntry, config: DecodeConfig, allow_protocols: Collection[str] = ()
) -> DecodedAudio | Rejected:
    """Decode ``entry``'s file, down-mixed, resampled and cut to ``max_duration_s``. A URL
    whose protocol is neither safe nor in ``allow_protocols`` is not opened (io/protocols.py)."""
    if protocol := forbidden_protocol(entry.audio_path, allow_protocols):
        return _reject(
            entry,
            "protocol_not_allowed",
            f"{protocol}:// is not opened by default (a catalog could make the workers fetch "
            f"any address); fix audio_path, or pass --allow-protocols {protocol} if you mean it",
        )
    if "://" not in entry.audio_path and (problem := _check_local_file(entry)):
        return problem
    rate = config.sample_rate_hz
    max_samples = int(config.max_duration_s * rate)
    chunks: list[np.ndarray] = []
    decoded = 0
    truncated = False
    note = ""
    with ExitStack() as stack:
        try:
            container = stack.enter_context(
                av.open(_source(entry, stack), metadata_errors="ignore")
            )
        except FileNotFoundError:
            return _reject(entry, "file_not_found", _NOT_FOUND)
        except PermissionError:
            return _reject(entry, "permission_denied", _NO_PERMISSION)
        except (av.FFmpegError, OSError, ValueError) as e:
            return _reject(entry, "undecodable", f"not a readable audio file ({e})")
        if not container.streams.audio:
            return _reject(entry, "no_audio_stream", "the file holds no audio stream")
        stream = container.streams.audio[0]
        source_duration_s = None
        if stream.duration is not None and stream.time_base is not None:
            source_duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            source_duration_s = container.duration / av.time_base
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        try:
            for frame in container.decode(stream):
                frame.pts = None
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    decoded += chunks[-1].shape[0]
                if decoded >= max_samples:
                    truncated = True
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().reshape(-1))
                    decoded += chunks[-1].shape[0]
        except (av.FFmpegError, ValueError) as e:
            if decoded == 0:
                return _reject(entry, "undecodable", f"no decodable audio ({e})")
            note = f"decoding stopped after {decoded / rate:.1f} s ({e}); kept what decoded"
    if decoded == 0:
        return _reject(entry, "empty_audio", "the audio stream holds no samples")
    samples = np.concatenate(chunks)[:max_samples].astype(np.float32, copy=False)
    decoded_s = samples.shape[0] / rate
    if (
        not note
        and not truncated
        and source_duration_s
        and decoded_s < 0.9 * source_duration_s - 0.5
    ):
        note = (
            f"the file declares {source_duration_s:.1f} s but {decoded_s:.1f} s decoded; "
            "it may be truncated"
        )
    if not np.isfinite(samples).all():
        return _reject(entry, "non_finite_samples", "NaN or infinite samples; re-export the audio")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    if rms == 0.0 or 20 * np.log10(rms) < config.silence_dbfs:
        level = "digital silence" if rms == 0.0 else f"{20 * np.log10(rms):.1f} dBFS"
        return _reject(entry, "silent", f"the audio is silent ({level})")
    return DecodedAudio(entry, samples, rate, source_duration_s, truncated, note)

"""``pipeline make-example``: a small multilingual versions catalog with real audio.

Vocals come from espeak-ng, over a synthetic accompaniment (chords, bass, drums) that changes
key and tempo between versions; files use every common container. Three works have several
versions each (one of them translated), plus a distractor song and an instrumental track
that the pipeline should reject for having no vocals.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE_HZ = 44_100


@dataclass(frozen=True)
class ExampleTrack:
    track_id: str
    work_id: str
    title: str
    language: str
    voice: str  # espeak-ng voice
    words_per_minute: int
    pitch: int  # espeak-ng pitch, 0-99
    lyrics: str  # empty: instrumental
    key_hz: float  # accompaniment root
    bpm: int
    container: str  # file extension
    sample_rate_hz: int
    reverb_s: float = 0.0  # decay time of the added room; 0: dry


_RIVER_EN = (
    "The river runs down to the sea. Carry my heart back home to me. "
    "Under the bridge the water sings. Hold on to the little things."
)
_RIVER_ES = (
    "El río corre hacia el mar. Lleva mi corazón a casa ya. "
    "Bajo el puente canta el agua. Guarda las pequeñas cosas."
)
_LANTERN_FR = (
    "Allume la lanterne dans la nuit. Je marche seul jusqu'au matin. "
    "Les étoiles dansent sur le chemin. Tu es la lumière de ma vie."
)
_LANTERN_EN = (
    "Light the lantern in the night. I walk alone until the morning. "
    "The stars are dancing on the road. You are the light of my life."
)
_MORNING_DE = (
    "Guten Morgen, kleine Stadt. Die Sonne scheint auf jedes Dach. "
    "Der Bäcker singt, die Glocke klingt. Ein neuer Tag beginnt."
)
_WIND_IT = (
    "Il vento porta la mia voce. Sopra le colline verdi. "
    "Canto per te ogni sera. Finché la luna non si spegne."
)

TRACKS = (
    ExampleTrack(
        "river-en-1",
        "river",
        "The River",
        "en",
        "en+m3",
        135,
        40,
        _RIVER_EN,
        130.8,
        96,
        "wav",
        44_100,
    ),
    ExampleTrack(
        "river-en-2",
        "river",
        "The River",
        "en",
        "en+f3",
        155,
        70,
        _RIVER_EN,
        220.0,
        120,
        "mp3",
        44_100,
    ),
    ExampleTrack(
        "river-es", "river", "El Río", "es", "es", 140, 50, _RIVER_ES, 174.6, 104, "ogg", 48_000
    ),
    ExampleTrack(
        "lantern-fr-1",
        "lantern",
        "La Lanterne",
        "fr",
        "fr",
        135,
        45,
        _LANTERN_FR,
        146.8,
        90,
        "flac",
        44_100,
    ),
    ExampleTrack(
        "lantern-fr-2",
        "lantern",
        "La Lanterne",
        "fr",
        "fr+f2",
        150,
        65,
        _LANTERN_FR,
        196.0,
        112,
        "m4a",
        44_100,
    ),
    ExampleTrack(
        "lantern-en",
        "lantern",
        "The Lantern",
        "en",
        "en-us",
        140,
        50,
        _LANTERN_EN,
        164.8,
        100,
        "wav",
        22_050,
    ),
    ExampleTrack(
        "morning-de-1",
        "morning",
        "Guten Morgen",
        "de",
        "de",
        135,
        45,
        _MORNING_DE,
        110.0,
        96,
        "mp3",
        32_000,
    ),
    ExampleTrack(
        "morning-de-2",
        "morning",
        "Guten Morgen",
        "de",
        "de+f1",
        150,
        70,
        _MORNING_DE,
        123.5,
        126,
        "flac",
        48_000,
    ),
    ExampleTrack(
        "wind-it", "wind", "Il Vento", "it", "it", 140, 50, _WIND_IT, 138.6, 108, "ogg", 44_100
    ),
    ExampleTrack("interlude", "interlude", "Interlude", "", "", 0, 0, "", 155.6, 88, "wav", 44_100),
)

_INTRO_S = 2.0
_OUTRO_S = 2.0
_INSTRUMENTAL_S = 12.0


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} is not installed; run `make setup` (it installs {tool})")
    return path


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return data.astype(np.float32) / 32768.0, w.getframerate()


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def sing(text: str, voice: str, words_per_minute: int, pitch: int, work_dir: Path) -> np.ndarray:
    """espeak-ng speech of ``text`` at ``RATE_HZ``."""
    out = work_dir / "voice.wav"
    subprocess.run(
        [
            _require("espeak-ng"),
            "-v",
            voice,
            "-s",
            str(words_per_minute),
            "-p",
            str(pitch),
            "-w",
            str(out),
            text,
        ],
        check=True,
        capture_output=True,
    )
    samples, rate = _read_wav(out)
    n_out = int(len(samples) * RATE_HZ / rate)
    return np.interp(np.arange(n_out) * rate / RATE_HZ, np.arange(len(samples)), samples).astype(
        np.float32
    )


def accompaniment(duration_s: float, key_hz: float, bpm: int, seed: int) -> np.ndarray:
    """Chords (I-V-vi-IV), bass, kick and hi-hat; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    beat_s = 60.0 / bpm
    bar_s = 4 * beat_s
    out = np.zeros(n, dtype=np.float64)
    progression = ((0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12))
    for bar in range(int(np.ceil(duration_s / bar_s))):
        start = int(bar * bar_s * RATE_HZ)
        end = min(n, int((bar + 1) * bar_s * RATE_HZ))
        local = t[start:end] - t[start]
        envelope = np.exp(-local * 1.5)
        chord = progression[bar % len(progression)]
        for semitone in chord:
            f = key_hz * 2 ** (semitone / 12)
            out[start:end] += 0.08 * envelope * np.sin(2 * np.pi * f * local)
        bass = key_hz / 2 * 2 ** (chord[0] / 12)
        out[start:end] += 0.12 * envelope * np.sin(2 * np.pi * bass * local)
    for beat in range(int(duration_s / beat_s)):
        start = int(beat * beat_s * RATE_HZ)
        length = min(n - start, int(0.15 * RATE_HZ))
        local = np.arange(length) / RATE_HZ
        out[start : start + length] += 0.3 * np.exp(-local * 30) * np.sin(2 * np.pi * 55 * local)
        hat = start + int(beat_s / 2 * RATE_HZ)
        hat_len = min(max(n - hat, 0), int(0.04 * RATE_HZ))
        out[hat : hat + hat_len] += 0.04 * rng.standard_normal(hat_len)
    return out.astype(np.float32)


def reverb(samples: np.ndarray, decay_s: float, seed: int) -> np.ndarray:
    """``samples`` plus a wet copy convolved (by FFT) with decaying noise: a synthetic room."""
    rng = np.random.default_rng(seed)
    n_ir = int(decay_s * RATE_HZ)
    impulse = rng.standard_normal(n_ir) * np.exp(-6.9 * np.arange(n_ir) / n_ir)  # -60 dB at end
    size = len(samples) + n_ir - 1
    wet = np.fft.irfft(np.fft.rfft(samples, size) * np.fft.rfft(impulse, size), size)
    wet = wet[: len(samples)]
    wet *= 0.5 * np.abs(samples).max() / max(1e-6, float(np.abs(wet).max()))
    return (samples + wet).astype(np.float32)


def render(track: ExampleTrack, work_dir: Path) -> np.ndarray:
    """The mixed song: intro, the lyrics sung twice, outro; with reverb if the track asks."""
    if track.lyrics:
        vocals = sing(track.lyrics, track.voice, track.words_per_minute, track.pitch, work_dir)
        vocals = np.concatenate([vocals, np.zeros(int(0.5 * RATE_HZ), np.float32), vocals])
        duration_s = _INTRO_S + len(vocals) / RATE_HZ + _OUTRO_S
    else:
        vocals = np.zeros(0, np.float32)
        duration_s = _INSTRUMENTAL_S
    music = accompaniment(duration_s, track.key_hz, track.bpm, seed=sum(map(ord, track.track_id)))
    start = int(_INTRO_S * RATE_HZ)
    mix = music.copy()
    mix[start : start + len(vocals)] += 0.9 * vocals
    if track.reverb_s > 0:
        mix = reverb(mix, track.reverb_s, seed=sum(map(ord, track.track_id)) + 1)
    return (0.8 * mix / max(1e-6, float(np.abs(mix).max()))).astype(np.float32)


def _encode(wav: Path, target: Path, rate: int) -> None:
    if target.suffix == ".wav" and rate == RATE_HZ:
        shutil.copyfile(wav, target)
        return
    codec = {".m4a": ["-c:a", "aac", "-b:a", "128k"], ".mp3": ["-b:a", "128k"]}.get(
        target.suffix, []
    )
    subprocess.run(
        [
            _require("ffmpeg"),
            "-nostdin",
            "-y",
            "-loglevel",
            "error",
            "-i",
            str(wav),
            "-ar",
            str(rate),
            *codec,
            "-map_metadata",
            "-1",
            "-fflags",
            "+bitexact",
            str(target),
        ],
        check=True,
    )


def make_example(output: Path) -> Path:
    """Write the audio files and ``catalog.csv`` under ``output``; return the catalog path."""
    return write_catalog(TRACKS, output)


def write_catalog(tracks: Iterable[ExampleTrack], output: Path) -> Path:
    """Render and encode ``tracks`` into ``output/audio``, list them in ``output/catalog.csv``;
    return the catalog path. Shared by ``make-example`` and ``make-bench``."""
    audio_dir = output / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = Path(tmp)
        for track in tracks:
            wav = work_dir / "mix.wav"
            _write_wav(wav, render(track, work_dir), RATE_HZ)
            target = audio_dir / f"{track.track_id}.{track.container}"
            _encode(wav, target, track.sample_rate_hz)
            rows.append(
                {
                    "track_id": track.track_id,
                    "audio_path": f"audio/{target.name}",
                    "work_id": track.work_id,
                    "title": track.title,
                    "artist": f"espeak-ng {track.voice}" if track.voice else "synth",
                    "language": track.language,
                }
            )
    catalog = output / "catalog.csv"
    with open(catalog, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return catalog

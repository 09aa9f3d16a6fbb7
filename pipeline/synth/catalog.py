"""Render, encode and list tracks: the catalog writer shared by the example and the bench.

Each file is rendered at 44.1 kHz, then encoded to its container and sample rate by ffmpeg;
``catalog.csv`` (with the ground truth columns of ``truth.COLUMNS``) is written last and
atomically, so a catalog on disk means every file it names is complete.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from pipeline.synth.audio import RATE_HZ, require_tool, write_wav
from pipeline.synth.render import RenderedTrack, render
from pipeline.synth.spec import TrackSpec
from pipeline.synth.truth import COLUMNS, format_regions

log = logging.getLogger(__name__)

_CODECS = {".m4a": ["-c:a", "aac", "-b:a", "128k"], ".mp3": ["-b:a", "128k"]}


def encode(wav: Path, target: Path, sample_rate_hz: int) -> None:
    """``wav`` in ``target``'s container at ``sample_rate_hz``, without varying metadata."""
    if target.suffix == ".wav" and sample_rate_hz == RATE_HZ:
        shutil.copyfile(wav, target)
        return
    subprocess.run(
        [
            require_tool("ffmpeg"),
            *("-nostdin", "-y", "-loglevel", "error", "-i", str(wav)),
            *("-ar", str(sample_rate_hz), *_CODECS.get(target.suffix, [])),
            *("-map_metadata", "-1", "-fflags", "+bitexact", str(target)),
        ],
        check=True,
    )


def catalog_row(track: RenderedTrack, audio_path: str) -> dict[str, str]:
    spec = track.spec
    return {
        "track_id": spec.track_id,
        "audio_path": audio_path,
        "work_id": spec.work_id,
        "title": spec.title,
        "artist": spec.artist,
        "language": spec.language,
        "kind": spec.kind,
        "vocal_db": "" if spec.vocal_db is None else f"{spec.vocal_db:.2f}",
        "duration_s": f"{track.duration_s:.2f}",
        "vocal_regions": format_regions(track.regions),
    }


def write_catalog(tracks: Iterable[TrackSpec], output: Path) -> Path:
    """Render and encode ``tracks`` into ``output/audio``, list them with their truth in
    ``output/catalog.csv``; return the catalog path."""
    audio_dir = output / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = Path(tmp)
        for spec in tracks:
            started = time.monotonic()
            rendered = render(spec, work_dir)
            wav = work_dir / "mix.wav"
            write_wav(wav, rendered.mix.mixture)
            target = audio_dir / f"{spec.track_id}.{spec.container}"
            encode(wav, target, spec.sample_rate_hz)
            rows.append(catalog_row(rendered, f"audio/{target.name}"))
            log.info(
                "%s: %.1f s rendered in %.1f s",
                spec.track_id,
                rendered.duration_s,
                time.monotonic() - started,
            )
    catalog = output / "catalog.csv"
    partial = output / "catalog.csv.partial"
    with open(partial, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, catalog)
    return catalog

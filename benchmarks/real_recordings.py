"""Real recordings from Debian's archive (``apt-get download``) with committed labels
(``benchmarks/data/real_recordings.csv``: files and SHA-256, duration, label, language,
whether held out of every threshold choice, the evidence for the label), fetched and checked.

    .venv/bin/python -m benchmarks.real_recordings --cache /tmp/real-cache
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from benchmarks._common import write_csv

LABELS_CSV = Path(__file__).resolve().parent / "data" / "real_recordings.csv"
LABELS = ("sung", "spoken", "instrumental")
SEPARATOR = "+"  # between the stems of one track, in ``paths`` and ``sha256``


@dataclass(frozen=True)
class RealTrack:
    track_id: str
    package: str
    paths: tuple[str, ...]  # inside the package; several stems are summed
    sha256: tuple[str, ...]
    duration_s: float
    label: str
    language: str
    held_out: bool
    evidence: str


COLUMNS = tuple(f.name for f in dataclasses.fields(RealTrack))


def read_labels(path: Path = LABELS_CSV) -> list[RealTrack]:
    """The committed labels; a malformed row raises naming the row and the column."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns must be {','.join(COLUMNS)}")
        tracks = [_parse(row, f"{path}:{n}") for n, row in enumerate(reader, start=2)]
    ids = [t.track_id for t in tracks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: duplicate track_id")
    return tracks


def _parse(row: dict[str, str], where: str) -> RealTrack:
    paths = tuple(row["paths"].split(SEPARATOR))
    hashes = tuple(row["sha256"].split(SEPARATOR))
    if len(paths) != len(hashes) or not all(len(h) == 64 for h in hashes):
        raise ValueError(f"{where}: one 64-digit sha256 per path, joined by {SEPARATOR!r}")
    if row["label"] not in LABELS:
        raise ValueError(f"{where}: label must be one of {LABELS}, got {row['label']!r}")
    if row["held_out"] not in ("yes", "no"):
        raise ValueError(f"{where}: held_out must be yes or no")
    if row["label"] != "instrumental" and not row["language"]:
        raise ValueError(f"{where}: a {row['label']} track needs its language")
    if not row["evidence"].strip():
        raise ValueError(f"{where}: say why the label is right in evidence")
    parsed = {"paths": paths, "sha256": hashes, "held_out": row["held_out"] == "yes"}
    return RealTrack(**row | parsed | {"duration_s": float(row["duration_s"])})


def _unpacked(package: str, cache: Path) -> Path:
    """The package's files under ``cache/root/<package>``, downloaded and unpacked once."""
    root = cache / "root" / package
    if root.is_dir():
        return root
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if not list(debs.glob(f"{package}_*.deb")):
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
    (deb,) = debs.glob(f"{package}_*.deb")
    partial = root.with_name(package + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True)
    partial.rename(root)
    return root


def _audio(track: RealTrack, root: Path, tracks_dir: Path) -> Path:
    """The track's file: the packaged file itself, or its stems summed into one FLAC."""
    files = [root / p.lstrip("/") for p in track.paths]
    for file, expected in zip(files, track.sha256, strict=True):
        with open(file, "rb") as f:
            found = hashlib.file_digest(f, "sha256").hexdigest()
        if found != expected:
            raise SystemExit(f"{file}: sha256 {found} differs from {LABELS_CSV}: {expected}")
    if len(files) == 1:
        return files[0]
    target = tracks_dir / f"{track.track_id}.flac"
    if not target.exists():
        inputs = [arg for file in files for arg in ("-i", str(file))]
        summed = f"amix=inputs={len(files)}:normalize=0"
        partial = target.with_suffix(".partial.flac")
        command = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *inputs]
        subprocess.run([*command, "-filter_complex", summed, str(partial)], check=True)
        partial.rename(target)
    return target


def real_catalog(cache: Path, tracks: list[RealTrack] | None = None) -> Path:
    """Fetch, check and list the recordings as a pipeline catalog; return its path."""
    tracks = read_labels() if tracks is None else tracks
    cache = cache.resolve()  # the catalog's paths stay the same through a symlinked cache
    tracks_dir = cache / "tracks"
    tracks_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for track in tracks:
        audio = _audio(track, _unpacked(track.package, cache), tracks_dir)
        rows.append(
            {
                "track_id": track.track_id,
                "audio_path": str(audio),
                "work_id": track.track_id,
                "title": track.track_id,
                "artist": track.package,
                "language": track.language,
            }
        )
    return write_csv(cache / "catalog.csv", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/real-cache"))
    args = parser.parse_args()
    catalog = real_catalog(args.cache)
    labels = read_labels()
    counts = {label: sum(t.label == label for t in labels) for label in LABELS}
    print(f"{catalog}: {len(labels)} tracks checked, {counts}")


if __name__ == "__main__":
    main()

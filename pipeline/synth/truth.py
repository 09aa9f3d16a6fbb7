"""The ground truth a generated catalog carries, and a reader for benchmarks to score with.

Columns beyond the pipeline's own: ``kind`` (sung, spoken or instrumental), ``vocal_db`` (the
voice over the band over the voiced spans, dB; empty for instrumentals), ``duration_s`` (the
rendered length) and ``vocal_regions`` (true voiced spans in seconds, ``start-end;start-end``,
two decimals; empty for instrumentals).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

COLUMNS = (
    "track_id",
    "audio_path",
    "work_id",
    "title",
    "artist",
    "language",
    "kind",
    "vocal_db",
    "duration_s",
    "vocal_regions",
)


@dataclass(frozen=True)
class Truth:
    kind: str
    vocal_db: float | None
    duration_s: float
    regions: list[tuple[float, float]]


def format_regions(regions: Sequence[tuple[float, float]]) -> str:
    return ";".join(f"{start:.2f}-{end:.2f}" for start, end in regions)


def parse_regions(text: str) -> list[tuple[float, float]]:
    spans = []
    for part in filter(None, text.split(";")):
        start, end = part.split("-")
        spans.append((float(start), float(end)))
    return spans


def read_truth(catalog_csv: Path) -> dict[str, Truth]:
    """Each track's truth by track_id, in catalog order."""
    with open(catalog_csv, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{catalog_csv}: not a generated catalog, no {', '.join(missing)}")
        return {
            row["track_id"]: Truth(
                kind=row["kind"],
                vocal_db=float(row["vocal_db"]) if row["vocal_db"] else None,
                duration_s=float(row["duration_s"]),
                regions=parse_regions(row["vocal_regions"]),
            )
            for row in reader
        }

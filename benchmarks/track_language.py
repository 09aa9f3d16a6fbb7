"""Sung tracks decoded in a language other than their own, when the catalog gives none.

A generated set (``pipeline make-bench``: sung works in several versions and languages, voice
-6..+6 dB, no instrumentals or spoken tracks) is extracted from a copy of its catalog without
the ``language`` column, so each track's language comes from Whisper's detection and the
track vote (``track_languages``). Flagged tracks are kept (``singing.keep_unsung_tracks``):
a sung track judged unsung still shows the language its windows were decoded in. The table
counts the sung tracks whose decoded language (``TrackFeatures.language``) is not the one
they were generated in, and those left without a text embedding (docs/lyrics-transcription.md).

    .venv/bin/python -m benchmarks.track_language --workdir /tmp/track-language
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks._common import (
    bench_parser,
    extract,
    make_bench,
    print_table,
    set_args,
    write_json,
)
from pipeline.io.parquet import read_table

KEEP_FLAGGED = "singing.keep_unsung_tracks=true"


def unlabelled_catalog(catalog: Path) -> Path:
    """A copy of ``catalog`` beside it without the ``language`` column (audio paths stay
    relative to the same folder)."""
    target = catalog.with_name("catalog-no-language.csv")
    with open(catalog, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in rows[0] if c != "language"]
    with open(target, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return target


def truth(catalog: Path) -> dict[str, str]:
    """The sung tracks of a generated catalog: {track_id: the language it was generated in}."""
    with open(catalog, newline="", encoding="utf-8") as f:
        return {r["track_id"]: r["language"] for r in csv.DictReader(f) if r["kind"] == "sung"}


def language_row(
    languages: dict[str, str],
    tracks: list[dict[str, Any]],
    segments: list[dict[str, Any]],
) -> dict[str, Any]:
    """Counts over the sung tracks of ``languages`` ({track_id: truth}): decoded (the tracks
    table's ``language``) in another language, judged without singing, sung without a text
    embedding. Ids as ``track_id:decoded``."""
    decoded = {t["track_id"]: t for t in tracks}
    with_text: dict[str, bool] = defaultdict(bool)
    for s in segments:
        with_text[s["track_id"]] |= s["singing"] == "sung" and s["text_embedding"] is not None
    wrong = [
        f"{i}:{decoded[i]['language']}"
        for i in languages
        if i in decoded and decoded[i]["language"] != languages[i]
    ]
    no_singing = [i for i in languages if decoded.get(i, {}).get("reason") == "no_singing"]
    no_text = [
        i
        for i in languages
        if decoded.get(i, {}).get("status") == "ok"
        and decoded[i].get("reason") is None
        and not with_text[i]
    ]
    return {
        "tracks": len(tracks),
        "sung_tracks": len(languages),
        "wrong_language": len(wrong),
        "no_singing": len(no_singing),
        "sung_without_text": len(no_text),
        "wrong_language_ids": " ".join(wrong) or "-",
        "no_singing_ids": " ".join(no_singing) or "-",
    }


def main() -> None:
    parser = bench_parser(__doc__, "/tmp/track-language")
    parser.add_argument("--works", type=int, default=12, help="(%(default)s)")
    parser.add_argument("--versions-per-work", type=int, default=3, help="(%(default)s)")
    parser.add_argument("--distractors", type=int, default=10, help="(%(default)s)")
    parser.add_argument("--length", choices=["short", "full"], default="short")
    parser.add_argument("--seed", type=int, default=36, help="(%(default)s)")
    parser.add_argument("--tag", default="", help="features-TAG: a folder per code version")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    bench = args.workdir / f"bench-{args.length}-{args.works}x{args.versions_per_work}"
    catalog = make_bench(
        bench / f"seed{args.seed}",
        *f"--works {args.works} --versions-per-work {args.versions_per_work}".split(),
        *f"--distractors {args.distractors} --instrumentals 0 --spoken 0".split(),
        *f"--length {args.length} --seed {args.seed}".split(),
    )
    features = args.workdir / f"features{args.tag and '-' + args.tag}"
    summary = extract(unlabelled_catalog(catalog), features, *set_args(KEEP_FLAGGED, *args.set))
    tracks = read_table(features / "tracks", "tracks").to_pylist()
    segments = read_table(
        features / "segments", "segments", ["track_id", "singing", "text_embedding"]
    ).to_pylist()
    row = {"set": catalog.parent.name, **language_row(truth(catalog), tracks, segments)}
    print_table([{k: v for k, v in row.items() if not k.endswith("_ids")}])
    for key in ("wrong_language_ids", "no_singing_ids"):
        print(f"{key}: {row[key]}")
    path = write_json(
        "track_language",
        {"catalog": str(catalog), "features": str(features), "set": args.set, "summary": summary}
        | {"row": row},
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()

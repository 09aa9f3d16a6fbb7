"""The extraction sections of a run report, each computed from the output folder's own files:
the tracks and segments tables, the partition markers and the manifest's run history.

Which run processed a track: the run during which its partition's marker was written (the
marker's ``completed_at`` after the run's ``started_at``; runs on one folder never overlap,
its lock sees to that). A resumed run reuses the partitions earlier runs completed."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.io.output_dir import INPUT_SKIPPED, OutputDir
from pipeline.io.parquet import read_table
from pipeline.report import html, plots

TRACK_COLUMNS = [
    "status",
    "reason",
    "catalog_language",
    "language",
    "detected_language",
    "segment_count",
    "sung_segment_count",
]
LISTING_COLUMNS = [
    "track_id",
    "status",
    "stage",
    "reason",
    "detail",
    "catalog_line",
    "title",
    "artist",
]
LISTED_PER_REASON = 50  # the tracks table holds the rest; the page says how to read them
SEGMENT_COLUMNS = [
    "language",
    "detected_language",
    "transcript",
    "singing",
]  # no embeddings or tokens: millions fit
WORD = r"[^\s\p{Z}]+"  # a word is what str.split() would give: a run of non-space characters
QUANTILES = (("min", 0.0), ("median", 0.5), ("p90", 0.9), ("max", 1.0))


def track_outcome(row: dict[str, Any]) -> str:
    """One label per track: ok, ok but flagged, or rejected with its reason."""
    if row["status"] == "ok":
        return "ok" if row["reason"] is None else f"ok, flagged {row['reason']}"
    return f"rejected: {row['reason']}"


def distribution(values: list[float]) -> list[float | None]:
    """min, median, p90 and max (numpy's linear interpolation); dashes when empty."""
    if not values:
        return [None] * len(QUANTILES)
    return [float(np.quantile(values, q)) for _, q in QUANTILES]


def sung_windows(segments: pa.Table) -> pa.Table:
    return segments.filter(pc.equal(segments["singing"], "sung"))


def tracks_section(tracks: list[dict[str, Any]]) -> str:
    counts = Counter(track_outcome(r) for r in tracks)
    ordered = sorted(counts.items(), key=lambda item: (not item[0].startswith("ok"), item[0]))
    parts = [
        html.paragraph(f"{len(tracks)} tracks in the tracks table."),
        html.table(["outcome", "tracks"], ordered, "track-outcomes"),
    ]
    if ordered:
        labels, values = zip(*ordered, strict=True)
        parts.append(html.figure(plots.bar_chart(labels, values, "tracks"), "tracks by outcome"))
    return html.section("tracks", "Tracks ok and rejected, by reason", parts)


def partition_of(part_file: Path) -> int:
    return int(part_file.name.split(".")[0].removeprefix("part-"))


def listed_tracks(tracks_dir: Path) -> list[dict[str, Any]]:
    """The tracks that are not plainly ok (rejected, or kept with a flag), each row with its
    ``partition``; read part by part, only their columns, so millions of ok tracks stay out."""
    rows: list[dict[str, Any]] = []
    for part_file in sorted(tracks_dir.glob("part-*.parquet")):
        table = read_table(part_file, "tracks", LISTING_COLUMNS)
        keep = pc.or_(pc.not_equal(table["status"], "ok"), pc.is_valid(table["reason"]))
        partition = {"partition": partition_of(part_file)}
        rows += [row | partition for row in table.filter(keep).to_pylist()]
    return rows


def partition_runs(markers: list[dict[str, Any]], runs: list[dict[str, Any]]) -> dict[int, int]:
    """Partition index -> index in ``runs`` of the run that completed it: the last run started
    before its marker was written. Markers without ``completed_at`` belong to no run."""
    starts = sorted((datetime.fromisoformat(run["started_at"]), i) for i, run in enumerate(runs))
    found = {}
    for marker in markers:
        if not marker.get("completed_at"):
            continue
        completed = datetime.fromisoformat(marker["completed_at"])
        before = [i for started, i in starts if started <= completed]
        if before:
            found[marker["partition"]] = before[-1]
    return found


def rest_hint(tracks_dir: Path, status: str, reason: str) -> str:
    """Where every track of one outcome is: the tracks table and the filter that selects them."""
    filters = [("status", "==", status), ("reason", "==", reason)]
    return (
        f"{tracks_dir} (Parquet), rows with status {status!r} and reason {reason!r}: "
        f"pyarrow.parquet.read_table({str(tracks_dir)!r}, filters={filters!r})"
    )


def listing_section(
    listed: list[dict[str, Any]], run_labels: dict[int, str], tracks_dir: Path
) -> str:
    """Per reason, the rejected (then the flagged) tracks with their detail and the run that
    processed them: the first ``LISTED_PER_REASON`` in catalog order, and where the rest are."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in listed:
        groups.setdefault(track_outcome(row), []).append(row)
    ordered = sorted(groups.items(), key=lambda g: (g[0].startswith("ok"), -len(g[1]), g[0]))
    if not ordered:
        parts = [html.paragraph("No track was rejected or flagged.")]
        return html.section("rejected", "Rejected and flagged tracks", parts)
    parts = [
        html.paragraph(
            "Each track rejected, or kept with a flag, with what happened and how to fix it "
            f"(detail) and the run that processed it; per reason the first {LISTED_PER_REASON} "
            "in catalog order."
        )
    ]
    headers = ["catalog line", "track_id", "title", "artist", "stage", "detail", "run"]
    for outcome, rows in ordered:
        status, reason = rows[0]["status"], rows[0]["reason"]
        kind = "flagged" if status == "ok" else "rejected"
        anchor = f"{kind}-{reason}"
        rows.sort(key=lambda r: (r["catalog_line"], r["track_id"]))
        shown = [
            (
                r["catalog_line"],
                r["track_id"],
                r["title"],
                r["artist"],
                r["stage"],
                r["detail"],
                run_labels.get(r["partition"], "-"),
            )
            for r in rows[:LISTED_PER_REASON]
        ]
        parts += [html.subheading(f"{outcome} ({len(rows)} track{'s' if len(rows) > 1 else ''})")]
        parts += [html.table(headers, shown, anchor)]
        if len(rows) > LISTED_PER_REASON:
            rest = len(rows) - LISTED_PER_REASON
            where = rest_hint(tracks_dir, status, reason)
            parts.append(
                html.paragraph(
                    f"{rest} more not listed; all {len(rows)} are in {where}.", note=True
                )
            )
    return html.section("rejected", "Rejected and flagged tracks", parts)


def skipped_section(skipped_csv: Path) -> str | None:
    """With a folder as ``--input``: the files not taken as tracks, per reason, the first
    ``LISTED_PER_REASON`` of each; the CSV beside the report holds them all."""
    if not skipped_csv.is_file():
        return None
    with skipped_csv.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        parts = [html.paragraph("Every file of the input folder was taken as a track.")]
        return html.section("skipped", "Input files skipped", parts)
    groups: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault(row["reason"], []).append(row)
    parts = [
        html.paragraph(
            f"Files of the input folder that are not tracks, with why; all {len(rows)} are in "
            f"{skipped_csv}."
        )
    ]
    for reason, members in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        parts.append(html.subheading(f"{reason} ({len(members)} file{'s' * (len(members) > 1)})"))
        shown = [(r["path"], r["detail"]) for r in sorted(members, key=lambda r: r["path"])]
        parts.append(html.table(["path", "detail"], shown[:LISTED_PER_REASON], f"skipped-{reason}"))
        if len(members) > LISTED_PER_REASON:
            rest = len(members) - LISTED_PER_REASON
            parts.append(html.paragraph(f"{rest} more not listed.", note=True))
    return html.section("skipped", "Input files skipped", parts)


def languages_section(
    tracks: list[dict[str, Any]], sung: pa.Table, forced: str | None = None
) -> str:
    """Per language, the ok tracks given it (``forced``, the run's --language, else the
    catalog's) beside those detected in it and those decoded in it, and the sung windows."""
    ok = [r for r in tracks if r["status"] == "ok"]
    given = Counter(forced or r["catalog_language"] for r in ok)
    detected = Counter(r["detected_language"] or "-" for r in ok)  # "-": nothing sung
    by_track = Counter(r["language"] or "-" for r in ok)
    by_segment = Counter(dict(zip(*_value_counts(sung["language"]), strict=True)))
    heard = Counter(dict(zip(*_value_counts(sung["detected_language"]), strict=True)))
    given.pop(None, None)
    heard.pop(None, None)  # windows written before the detection was recorded
    languages = sorted(
        by_track.keys() | by_segment.keys() | given.keys() | detected.keys(),
        key=lambda x: (-by_track[x], x),
    )
    rows = [
        (lang, given[lang], detected[lang], by_track[lang], by_segment[lang], heard[lang])
        for lang in languages
    ]
    pairs = [(forced or r["catalog_language"], r["detected_language"]) for r in ok]
    differ = sum(1 for g, d in pairs if g and d and g != d)
    parts = [
        html.paragraph(
            "A track given a language (--language, else its catalog row's) is decoded in it; "
            "otherwise in the one detected in most of its sung windows, or a window's own when "
            "it is sure of it. Detected: the language Whisper heard in most sung windows, "
            "whatever they were decoded in."
        ),
        html.table(
            [
                "language",
                "ok tracks given",
                "ok tracks detected",
                "ok tracks decoded",
                "sung windows decoded",
                "sung windows detected",
            ],
            rows,
            "languages",
        ),
        html.paragraph(
            f"{differ} ok track(s) given a language other than the one detected in them.",
            note=True,
        ),
    ]
    return html.section("languages", "Languages given, detected and decoded", parts)


def _value_counts(column: pa.ChunkedArray) -> tuple[list[Any], list[int]]:
    counts = pc.value_counts(column)
    return counts.field("values").to_pylist(), counts.field("counts").to_pylist()


def segments_section(tracks: list[dict[str, Any]], sung: pa.Table | None) -> str:
    """Windows per track and, unless it is a LIVI-only extraction (``sung`` None: no
    transcripts), sung windows per track and transcript lengths."""
    ok = [r for r in tracks if r["status"] == "ok"]
    per_track = [r["segment_count"] for r in ok]
    rows = [("windows per ok track", len(per_track), *distribution(per_track))]
    words: list[int] = []
    if sung is not None:
        sung_per_track = [r["sung_segment_count"] for r in ok]
        words = pc.count_substring_regex(sung["transcript"], WORD).to_pylist()
        characters = pc.utf8_length(sung["transcript"]).to_pylist()
        rows += [
            ("sung windows per ok track", len(sung_per_track), *distribution(sung_per_track)),
            ("words per sung window's transcript", len(words), *distribution(words)),
            ("characters per sung window's transcript", len(characters), *distribution(characters)),
        ]
    headers = ["quantity", "count", *(name for name, _ in QUANTILES)]
    parts = [html.table(headers, rows, "segment-distributions")]
    if per_track:
        svg = plots.histogram(per_track, "30 s windows per ok track")
        parts.append(html.figure(svg, "windows per ok track"))
    if words:
        parts.append(html.figure(plots.histogram(words, "words"), "words per sung transcript"))
    return html.section("segments", "Segments per track and transcript lengths", parts)


def completion_times(markers: list[dict[str, Any]]) -> list[tuple[datetime, int]]:
    """(completion time, tracks) of each partition that recorded its time, in time order."""
    timed = [
        (datetime.fromisoformat(m["completed_at"]), m["tracks"])
        for m in markers
        if m.get("completed_at")
    ]
    return sorted(timed)


def _throughput_svg(timed: list[tuple[datetime, int]], start: datetime | None) -> str:
    figure = plots.new_figure()
    axis = figure.subplots()
    if start is not None and start <= timed[0][0]:
        timed = [(start, 0), *timed]  # the curve starts where the first run started
    times = [t for t, _ in timed]
    axis.step(times, np.cumsum([n for _, n in timed]), where="post", marker="o")
    axis.set_xlabel("partition completed (UTC)")
    axis.set_ylabel("tracks done")
    figure.autofmt_xdate()
    return plots.to_svg(figure)


def throughput_section(
    markers: list[dict[str, Any]], runs: list[dict[str, Any]], run_of: dict[int, int]
) -> str:
    """One row per run, with the ok and rejected tracks of the partitions it completed that
    are in the outputs now (``run_of``: partition -> run, see ``partition_runs``)."""
    in_outputs = [Counter[str]() for _ in runs]
    unattributed = Counter[str]()
    for marker in markers:
        index = run_of.get(marker["partition"])
        counts = unattributed if index is None else in_outputs[index]
        counts.update(ok=marker["ok"], rejected=marker["tracks"] - marker["ok"], partitions=1)
    rows = []
    for run, counts in zip(runs, in_outputs, strict=True):
        rate = run["processed"] / run["wall_s"] * 60 if run["wall_s"] else None
        rows.append(
            (
                run["run_id"] or "-",
                html.timestamp(run["started_at"]),
                html.timestamp(run["finished_at"]),
                run["status"],
                html.duration(run["wall_s"]),
                run["completed_partitions"],
                run["processed"],
                html.significant(rate),
                counts["ok"],
                counts["rejected"],
            )
        )
    headers = [
        "run",
        "started (UTC)",
        "finished (UTC)",
        "status",
        "wall time",
        "partitions completed",
        "tracks processed",
        "tracks per minute",
        "tracks ok",
        "tracks rejected",
    ]
    parts = [
        html.table(headers, rows, "runs"),
        html.paragraph(
            "tracks ok and rejected: those in the outputs now that the run processed, i.e. of "
            "the partitions it completed (a resumed run reuses what earlier runs completed); "
            "the listing of rejected tracks names each one's run.",
            note=True,
        ),
    ]
    if unattributed:
        parts.append(
            html.paragraph(
                f"{unattributed['partitions']} partition(s), {unattributed['ok']} ok and "
                f"{unattributed['rejected']} rejected tracks, recorded no completion time: "
                "no run is known for them.",
                note=True,
            )
        )
    timed = completion_times(markers)
    if timed:
        start = datetime.fromisoformat(runs[0]["started_at"]) if runs else None
        svg = _throughput_svg(timed, start)
        parts.append(html.figure(svg, "tracks done as partitions complete"))
    else:
        parts.append(html.paragraph("No partition recorded its completion time.", note=True))
    return html.section("throughput", "Throughput over time", parts)


def cluster_section(runs: list[dict[str, Any]]) -> str:
    kinds = sorted({kind for run in runs for kind in run["task_retries"]})
    rows = [
        (
            run["run_id"] or "-",
            run["workers_lost"],
            sum(run["task_retries"].values()),
            *(run["task_retries"].get(kind, 0) for kind in kinds),
            len(run["failed_partitions"]),
        )
        for run in runs
    ]
    headers = [
        "run",
        "workers lost",
        "task retries",
        *(f"retries: {kind}" for kind in kinds),
        "failed partitions",
    ]
    parts = [
        html.paragraph(
            "Dask re-runs the tasks of a lost worker elsewhere, and re-runs a task that raised "
            "up to --retries times; a partition fails when its tasks still fail, and a re-run "
            "of the same command retries it."
        ),
        html.table(headers, rows, "cluster-events"),
    ]
    failed = [
        (run["run_id"] or "-", int(index), error)
        for run in runs
        for index, error in run["failed_partitions"].items()
    ]
    if failed:
        parts.append(html.table(["run", "partition", "error"], failed, "failed-partitions"))
    return html.section("cluster", "Lost workers and retries", parts)


def extract_sections(folder: Path) -> list[str]:
    """Every extraction section of the output folder ``folder``."""
    out = OutputDir(folder)
    manifest = out.read_manifest() or {}
    tracks = read_table(folder / "tracks", "tracks", TRACK_COLUMNS).to_pylist()
    runs = manifest.get("runs", [])
    markers = manifest.get("partitions", [])
    run_of = partition_runs(markers, runs)
    run_labels = {partition: runs[i]["run_id"] or "-" for partition, i in run_of.items()}
    tracks_dir = folder.absolute() / "tracks"
    if manifest.get("config", {}).get("livi_run"):  # LIVI-only: no segments, no languages
        sung = None
        languages = []
    else:
        sung = sung_windows(read_table(folder / "segments", "segments", SEGMENT_COLUMNS))
        forced = manifest.get("config", {}).get("whisper", {}).get("language")
        languages = [languages_section(tracks, sung, forced)]
    return [
        tracks_section(tracks),
        listing_section(listed_tracks(tracks_dir), run_labels, tracks_dir),
        *filter(None, [skipped_section(folder.absolute() / INPUT_SKIPPED)]),
        *languages,
        segments_section(tracks, sung),
        throughput_section(markers, runs, run_of),
        cluster_section(runs),
    ]

"""The report's listing of rejected and flagged tracks and its table of runs, on an output
folder written through the real writers: two runs, one per partition, and a reason with more
tracks than the page lists."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pyarrow.parquet
import pytest

from pipeline.io.discover import Skipped, skipped_bytes
from pipeline.io.output_dir import INPUT_SKIPPED, OutputDir
from pipeline.io.parquet import write_table
from pipeline.report import REPORT_FILE, write_report
from pipeline.report.extract import LISTED_PER_REASON
from tests.report.page import read_page

pytestmark = pytest.mark.timeout(60)

FIRST, SECOND = "extract-20261201T100000", "extract-20261202T090000"
RUNS = [
    {
        "run_id": FIRST,
        "started_at": "2026-12-01T10:00:00.000+00:00",
        "finished_at": "2026-12-01T10:03:12.400+00:00",
        "status": "complete",
        "wall_s": 192.4,
        "processed": 60,
        "completed_partitions": 1,
        "failed_partitions": {},
        "workers_lost": 0,
        "task_retries": {},
    },
    {
        "run_id": SECOND,
        "started_at": "2026-12-02T09:00:00.000+00:00",
        "finished_at": "2026-12-02T09:00:42.000+00:00",
        "status": "complete",
        "wall_s": 42.0,
        "processed": 15,
        "completed_partitions": 1,
        "failed_partitions": {},
        "workers_lost": 0,
        "task_retries": {},
    },
]


def _track(line: int, status: str, reason: str | None = None, **more: Any) -> dict[str, Any]:
    track_id = f"t{line:03d}"
    return {
        "track_id": track_id,
        "status": status,
        "reason": reason,
        "audio_path": f"/audio/{track_id}.wav",
        "catalog_line": line,
        "title": f"Song {line}",
        "artist": "Band <& co>",
        "segment_count": 0 if status == "rejected" else 2,
        "sung_segment_count": 0 if status == "rejected" else 1,
        "language": None if status == "rejected" else "en",
    } | more


def _missing(line: int) -> dict[str, Any]:
    detail = f"no such file: /audio/t{line:03d}.wav; fix audio_path in the catalog"
    return _track(line, "rejected", "file_not_found", stage="decode", detail=detail)


def _marker(index: int, rows: list[dict[str, Any]], completed_at: str) -> dict[str, Any]:
    ok = [r for r in rows if r["status"] == "ok"]
    return {"partition": index, "tracks": len(rows), "ok": len(ok), "completed_at": completed_at}


def _write_outputs(root: Path, partitions: list[tuple[list[dict[str, Any]], str]]) -> OutputDir:
    out = OutputDir(root)
    markers = []
    for index, (rows, completed_at) in enumerate(partitions):
        write_table(rows, "tracks", out.root / out.tracks_rel(index))
        write_table([], "segments", out.root / out.segments_rel(index))
        markers.append(_marker(index, rows, completed_at))
    out.write_manifest({"status": "complete", "config": {}, "partitions": markers, "runs": RUNS})
    write_report(root)
    return out


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    # Lines in reverse order in the part file: the listing sorts them by catalog line.
    first = [_missing(line) for line in range(56, 1, -1)]  # 55 tracks, lines 2..56
    first += [_track(line, "ok") for line in range(57, 62)]
    second = [
        _track(62, "rejected", "silent", stage="decode", detail="peak -91 dBFS"),
        _track(63, "ok", "no_singing", detail="no window judged sung"),
        *(_track(line, "ok") for line in range(64, 76)),
        _track(76, "rejected", "silent", stage="decode", detail="peak -120 dBFS"),
    ]
    _write_outputs(
        tmp_path, [(first, "2026-12-01T10:03:00+00:00"), (second, "2026-12-02T09:00:40+00:00")]
    )
    return tmp_path


def test_rejected_tracks_are_listed_per_reason_with_their_run(two_runs: Path) -> None:
    page = read_page(two_runs / REPORT_FILE)
    assert page.sections == ["tracks", "rejected", "languages", "segments", "throughput", "cluster"]
    missing = page.rows("rejected-file_not_found")
    assert len(missing) == LISTED_PER_REASON == 50
    assert [r["track_id"] for r in missing] == [f"t{line:03d}" for line in range(2, 52)]
    assert missing[0] == {
        "catalog line": "2",
        "track_id": "t002",
        "title": "Song 2",
        "artist": "Band <& co>",
        "stage": "decode",
        "detail": "no such file: /audio/t002.wav; fix audio_path in the catalog",
        "run": FIRST,
    }
    silent = page.rows("rejected-silent")
    assert [(r["track_id"], r["detail"], r["run"]) for r in silent] == [
        ("t062", "peak -91 dBFS", SECOND),
        ("t076", "peak -120 dBFS", SECOND),
    ]
    (flagged,) = page.rows("flagged-no_singing")
    assert (flagged["track_id"], flagged["stage"], flagged["run"]) == ("t063", "-", SECOND)


def test_a_long_listing_says_where_the_rest_are(two_runs: Path) -> None:
    text = html.unescape((two_runs / REPORT_FILE).read_text(encoding="utf-8"))
    tracks_dir = two_runs.absolute() / "tracks"
    assert f"5 more not listed; all 55 are in {tracks_dir} (Parquet)" in text
    assert text.count("more not listed") == 1  # silent (2) and no_singing (1) fit
    assert "<h3>rejected: file_not_found (55 tracks)</h3>" in text
    assert "<h3>ok, flagged no_singing (1 track)</h3>" in text
    start = text.index("pyarrow.parquet.read_table(")
    call = text[start : text.index(")])", start) + 3]
    rest = eval(call, {"pyarrow": pyarrow})  # the hint, as a reader would paste it
    assert sorted(rest["track_id"].to_pylist()) == [f"t{line:03d}" for line in range(2, 57)]


def test_runs_table_rounds_for_people_and_counts_each_runs_tracks(two_runs: Path) -> None:
    page = read_page(two_runs / REPORT_FILE)
    first, second = page.rows("runs")
    assert first["run"] == FIRST and second["run"] == SECOND
    assert (first["started (UTC)"], first["finished (UTC)"]) == (
        "2026-12-01 10:00:00",
        "2026-12-01 10:03:12",
    )
    assert (first["wall time"], first["tracks per minute"]) == ("3 min 12 s", "18.7")  # 60/192.4 s
    assert (second["wall time"], second["tracks per minute"]) == ("42 s", "21.4")  # 15/42 s
    assert (first["tracks ok"], first["tracks rejected"]) == ("5", "55")
    assert (second["tracks ok"], second["tracks rejected"]) == ("13", "2")


def test_no_rejections_say_so(tmp_path: Path) -> None:
    _write_outputs(tmp_path, [([_track(2, "ok")], "2026-12-01T10:03:00+00:00")])
    page = read_page(tmp_path / REPORT_FILE)
    assert "rejected" in page.sections
    assert not [t for t in page.tables if t.startswith(("rejected-", "flagged-"))]
    assert "No track was rejected or flagged." in (tmp_path / REPORT_FILE).read_text()


def test_files_skipped_from_an_input_folder_are_listed_per_reason(tmp_path: Path) -> None:
    skipped = [Skipped(f"art/cover{i:02d}.jpg", "not_audio", "JPEG image") for i in range(52)]
    skipped.append(Skipped("loop", "symlink_loop", "points back to a folder above it"))
    (tmp_path / INPUT_SKIPPED).write_bytes(skipped_bytes(skipped))
    _write_outputs(tmp_path, [([_track(2, "ok")], "2026-12-01T10:03:00+00:00")])
    page = read_page(tmp_path / REPORT_FILE)
    assert page.sections[:3] == ["tracks", "rejected", "skipped"]
    not_audio = page.rows("skipped-not_audio")
    assert len(not_audio) == LISTED_PER_REASON
    assert not_audio[0] == {"path": "art/cover00.jpg", "detail": "JPEG image"}
    assert page.rows("skipped-symlink_loop") == [
        {"path": "loop", "detail": "points back to a folder above it"}
    ]
    text = html.unescape((tmp_path / REPORT_FILE).read_text(encoding="utf-8"))
    assert "<h3>not_audio (52 files)</h3>" in text and "2 more not listed." in text
    assert f"all 53 are in {tmp_path.absolute() / INPUT_SKIPPED}" in text

"""The extraction's ``report.html``: well-formed, every section there, and its numbers equal to
the output's own tables and manifest."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.io.parquet import read_table
from pipeline.report import REPORT_FILE
from tests.report.page import read_page

pytestmark = pytest.mark.integration


def _number(cell: str) -> float:
    return float(cell)


def test_report_sections_and_track_counts(example_features: Path) -> None:
    page = read_page(example_features / REPORT_FILE)
    assert page.sections == ["tracks", "rejected", "languages", "segments", "throughput", "cluster"]
    assert page.svgs >= 4  # outcomes, windows, words, throughput
    tracks = read_table(example_features / "tracks", "tracks").to_pylist()
    expected = Counter(
        ("ok" if t["reason"] is None else f"ok, flagged {t['reason']}")
        if t["status"] == "ok"
        else f"rejected: {t['reason']}"
        for t in tracks
    )
    shown = {r["outcome"]: int(r["tracks"]) for r in page.rows("track-outcomes")}
    assert shown == expected and sum(shown.values()) == len(tracks) == 10
    assert shown["rejected: no_singing"] >= 1  # the instrumental interlude


def test_report_lists_each_rejected_track_with_its_detail_and_run(example_features: Path) -> None:
    page = read_page(example_features / REPORT_FILE)
    (run,) = json.loads((example_features / "manifest.json").read_text())["runs"]
    tracks = read_table(example_features / "tracks", "tracks").to_pylist()
    rejected = [t for t in tracks if t["status"] == "rejected"]
    assert rejected  # the instrumental interlude at least
    for reason in {t["reason"] for t in rejected}:
        expected = sorted(
            (t["catalog_line"], t["track_id"], t["detail"])
            for t in rejected
            if t["reason"] == reason
        )
        listed = page.rows(f"rejected-{reason}")
        shown = [(int(r["catalog line"]), r["track_id"], r["detail"]) for r in listed]
        assert shown == expected
        assert {r["run"] for r in listed} == {run["run_id"]}
    assert not [t for t in page.tables if t.startswith("flagged-")]  # keep_unsung_tracks off


def test_report_languages_and_distributions_equal_the_tables(example_features: Path) -> None:
    page = read_page(example_features / REPORT_FILE)
    tracks = [t for t in read_table(example_features / "tracks", "tracks").to_pylist()]
    ok = [t for t in tracks if t["status"] == "ok"]
    segments = read_table(example_features / "segments", "segments").to_pylist()
    sung = [s for s in segments if s["singing"] == "sung"]
    languages = {r["language"]: r for r in page.rows("languages")}
    decoded = {k: int(r["ok tracks decoded"]) for k, r in languages.items()}
    assert {k: n for k, n in decoded.items() if n} == Counter(t["language"] for t in ok)
    assert sum(int(r["sung windows decoded"]) for r in languages.values()) == len(sung)
    rows = {r["quantity"]: r for r in page.rows("segment-distributions")}
    windows = [t["segment_count"] for t in ok]
    assert int(rows["windows per ok track"]["count"]) == len(ok)
    assert _number(rows["windows per ok track"]["median"]) == pytest.approx(np.median(windows))
    assert _number(rows["windows per ok track"]["max"]) == max(windows)
    words = [len(s["transcript"].split()) for s in sung]
    row = rows["words per sung window's transcript"]
    assert int(row["count"]) == len(sung)
    assert (_number(row["min"]), _number(row["max"])) == (min(words), max(words))
    assert _number(row["median"]) == pytest.approx(np.median(words))


def test_report_runs_and_cluster_events_equal_the_manifest(example_features: Path) -> None:
    page = read_page(example_features / REPORT_FILE)
    manifest = json.loads((example_features / "manifest.json").read_text())
    (run,) = manifest["runs"]
    (shown,) = page.rows("runs")
    assert shown["run"] == run["run_id"] and shown["status"] == "complete"
    assert int(shown["partitions completed"]) == run["completed_partitions"] == 4
    assert int(shown["tracks processed"]) == run["processed"] == 10
    rejected = sum(p["tracks"] - p["ok"] for p in manifest["partitions"])
    assert (int(shown["tracks ok"]), int(shown["tracks rejected"])) == (10 - rejected, rejected)
    assert re.fullmatch(r"\d+(\.\d)? s|\d+ min \d+ s|\d+ h \d\d min", shown["wall time"])
    rate = shown["tracks per minute"]  # three significant figures
    assert float(rate) == pytest.approx(10 / run["wall_s"] * 60, rel=5e-3)
    assert len(rate.replace(".", "").strip("0")) <= 3
    assert all(p["completed_at"] >= run["started_at"] for p in manifest["partitions"])
    (events,) = page.rows("cluster-events")
    assert int(events["workers lost"]) == run["workers_lost"] == 0
    assert int(events["task retries"]) == sum(run["task_retries"].values()) == 0
    assert int(events["failed partitions"]) == 0 and "failed-partitions" not in page.tables

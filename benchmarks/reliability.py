"""Jobs killed and resumed: SIGKILL ``pipeline run extract`` on the example catalog at random
points (``--kills-per-job`` times, each within ``--max-kill-s``), let a final run finish, then
count tracks present, duplicates, missing tracks and shards that fail their marker's checksum.

    .venv/bin/python -m benchmarks.reliability --jobs 4 --kills-per-job 2
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks._common import (
    extract_command,
    make_example_catalog,
    print_table,
    run_quiet,
    write_json,
)
from pipeline.io.catalog import read_catalog
from pipeline.io.output_dir import OutputDir, file_record
from pipeline.io.parquet import read_table
from pipeline.io.webdataset import iter_samples


def _killed_run(catalog: Path, output: Path, delay_s: float) -> bool:
    """Start a run and SIGKILL it after ``delay_s``; False if it finished first."""
    process = subprocess.Popen(
        extract_command(catalog, output, "--partition-size", "2"),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        process.wait(timeout=delay_s)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


def _corrupted_shards(output: Path) -> int:
    """Partitions without a marker, or whose files or shard fail it."""
    out = OutputDir(output)
    bad = 0
    for index in out.existing_partitions():
        marker = out.completed_marker(index)
        if marker is None or any(
            file_record(output / r) != rec for r, rec in marker["files"].items()
        ):
            bad += 1
            continue
        try:
            list(iter_samples(out.root / out.shard_rel(index)))
        except Exception:  # noqa: BLE001 - any read failure is a corrupted shard
            bad += 1
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--kills-per-job", type=int, default=2)
    parser.add_argument("--max-kill-s", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    totals: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        catalog = make_example_catalog(root)
        expected = sorted(e.track_id for e in read_catalog(catalog))
        for job in range(args.jobs):
            output = root / f"job-{job}"
            started = time.monotonic()
            for _ in range(args.kills_per_job):
                totals["kills"] += _killed_run(catalog, output, rng.uniform(3.0, args.max_kill_s))
            run_quiet(extract_command(catalog, output, "--partition-size", "2"))
            tracks = read_table(output / "tracks", "tracks").column("track_id").to_pylist()
            present = Counter(tracks)
            totals["runs"] += 1
            totals["tracks_expected"] += len(expected)
            totals["tracks_present"] += len(present)
            totals["duplicates"] += sum(n - 1 for n in present.values())
            totals["missing"] += len(set(expected) - set(present))
            totals["corrupted_shards"] += _corrupted_shards(output)
            print(f"job {job}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    columns = "runs kills tracks_expected tracks_present duplicates missing corrupted_shards"
    row = {c: totals[c] for c in columns.split()}
    print_table([row])
    print(f"json: {write_json('reliability', row | {'seed': args.seed})}")


if __name__ == "__main__":
    main()

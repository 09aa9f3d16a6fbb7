"""Peak memory per Dask worker against catalog size, and disk per hour of audio.

A worker holds one track at a time and the driver at most two partitions per worker, so a
million-track job should need what a 20-track job needs. ``--songs`` generated 3-4 minute songs
(``make-bench --length full``) go through ``pipeline run extract`` on the default LocalCluster,
then a catalog listing each file ``--times`` times under distinct ids (every row is decoded,
transcribed and written again), the RSS of every process polled. Prints each run's worker and
driver peaks, the large/small ratio of the largest worker peak (target: within 1.1), and the
output's megabytes per hour of audio. ``--livi-run RUN`` measures LIVI-only extraction instead.

    .venv/bin/python -m benchmarks.memory --workdir /tmp/memory-bench --songs 20 --times 10
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

from benchmarks._common import (
    bench_parser,
    extract_command,
    folder_mb,
    full_song_bench,
    print_table,
    run_measured,
    write_json,
)

FOLDERS = ("tracks", "segments", "embeddings", "shards")


def repeated_catalog(catalog: Path, times: int, target: Path) -> Path:
    """``catalog``'s rows ``times`` over, track ids suffixed ``~k``, paths made absolute."""
    with open(catalog, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(target, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for k in range(times):
            for row in rows:
                audio = (catalog.parent / row["audio_path"]).resolve()
                writer.writerow(row | {"track_id": f"{row['track_id']}~{k}", "audio_path": audio})
    return target


def measure(catalog: Path, output: Path, extra: list[str]) -> dict[str, Any]:
    shutil.rmtree(output, ignore_errors=True)
    wall_s, peaks = run_measured(extract_command(catalog, output, *extra))
    workers = {name: mb for name, mb in peaks.items() if "dask worker" in name}
    driver = max(mb for name, mb in peaks.items() if name not in workers)
    audio_h = json.loads((output / "manifest.json").read_text())["summary"]["audio_s"] / 3600
    disk = {f"{d}_MB_per_audio_h": round(folder_mb(output / d) / audio_h, 2) for d in FOLDERS}
    return {
        "catalog": catalog.name,
        "tracks": len(catalog.read_text(encoding="utf-8").splitlines()) - 1,
        "wall_s": round(wall_s, 1),
        "worker_peaks_mb": sorted(round(mb) for mb in workers.values()),
        "largest_worker_mb": round(max(workers.values())),
        "driver_mb": round(driver),
        **{k: v for k, v in disk.items() if v},  # LIVI-only runs write no shards
    }


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__, "memory-bench")
    parser.add_argument("--songs", type=int, default=20, help="full-length songs: the small one")
    parser.add_argument("--times", type=int, default=10, help="the large catalog: songs x times")
    parser.add_argument("--livi-run", help="LIVI-only extraction with this run instead")
    args = parser.parse_args(argv)
    small = args.workdir / "bench" / "catalog.csv"
    full_song_bench(small, args.songs)
    large = repeated_catalog(small, args.times, args.workdir / f"catalog-x{args.times}.csv")
    extra = ["--livi-run", args.livi_run] if args.livi_run else []
    rows = [measure(c, args.workdir / f"out-{c.stem}", extra) for c in (small, large)]
    ratio = rows[1]["largest_worker_mb"] / rows[0]["largest_worker_mb"]
    print_table(rows)
    print(f"largest worker peak, large / small catalog: {ratio:.3f}")
    print(f"json: {write_json('memory', {'rows': rows, 'worker_peak_ratio': round(ratio, 3)})}")


if __name__ == "__main__":
    main()

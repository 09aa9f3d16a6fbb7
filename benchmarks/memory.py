"""Peak memory per Dask worker against catalog size: a small and a ten-times larger catalog.

Memory must depend on the track, not on the catalog: each worker holds one track's audio and
features at a time and the driver keeps at most two partitions per worker in flight, so a
million-track job needs what a 20-track job needs. Data: ``--songs`` generated 3-4 minute
songs (``make-bench --length full``); the large catalog lists each of their files ``--times``
times under distinct track ids (the pipeline does not deduplicate audio, so every row is
decoded, transcribed and written). Both catalogs go through ``pipeline run extract`` on the
default LocalCluster (``--livi-run`` optional: LIVI-only extraction instead), the RSS of every
process of the job polled; prints the peak of each worker, the driver, and the ratio of the
large catalog's largest worker peak to the small one's; writes JSON.

    .venv/bin/python -m benchmarks.memory --workdir /tmp/memory-bench --songs 20 --times 10
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path
from typing import Any

from benchmarks._common import (
    extract_command,
    full_song_bench,
    print_table,
    run_measured,
    write_json,
)


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
    return {
        "catalog": catalog.name,
        "tracks": len(catalog.read_text(encoding="utf-8").splitlines()) - 1,
        "wall_s": round(wall_s, 1),
        "worker_peaks_mb": sorted(round(mb) for mb in workers.values()),
        "largest_worker_mb": round(max(workers.values())),
        "driver_mb": round(driver),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("memory-bench"))
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

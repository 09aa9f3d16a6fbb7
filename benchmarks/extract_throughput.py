"""Extraction throughput and output size on the example catalog, LocalCluster sizes side by side.

Runs ``pipeline run extract`` (the real CLI, real Whisper base) with 1 and 2 worker processes,
alternating, ``--repeats`` times each, into fresh folders; prints medians of audio seconds per
wall second and the output bytes per hour of audio, and writes benchmarks/results/*.json.

    .venv/bin/python -m benchmarks.extract_throughput --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from benchmarks._common import extract_command, make_example_catalog, print_table, write_json


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.glob("*") if f.is_file())


def _run(catalog: Path, output: Path, workers: int) -> dict[str, float]:
    subprocess.run(
        extract_command(catalog, output, "--workers", str(workers)),
        check=True,
        capture_output=True,
    )
    summary = json.loads((output / "manifest.json").read_text())["summary"]
    hours = summary["audio_s"] / 3600
    return {
        "wall_s": summary["wall_s"],
        "audio_s": summary["audio_s"],
        "audio_s_per_wall_s": summary["audio_s"] / summary["wall_s"],
        **{
            f"{k}_mb_per_audio_h": _folder_bytes(output / k) / 1e6 / hours
            for k in ("tracks", "segments", "shards")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        catalog = make_example_catalog(root)
        runs: dict[int, list[dict[str, float]]] = {w: [] for w in args.workers}
        for repeat in range(args.repeats):
            for workers in args.workers:  # alternate, so machine noise hits both alike
                out = root / f"out-{workers}-{repeat}"
                runs[workers].append(_run(catalog, out, workers))
    rows = []
    for workers, results in runs.items():
        median = {k: statistics.median(r[k] for r in results) for k in results[0]}
        rows.append(
            {
                "workers": workers,
                "runs": len(results),
                "audio_s": round(median["audio_s"], 1),
                "median_wall_s": round(median["wall_s"], 1),
                "audio_s_per_wall_s": round(median["audio_s_per_wall_s"], 2),
                "shards_MB_per_audio_h": round(median["shards_mb_per_audio_h"], 1),
                "segments_MB_per_audio_h": round(median["segments_mb_per_audio_h"], 2),
                "tracks_MB_per_audio_h": round(median["tracks_mb_per_audio_h"], 3),
            }
        )
    print_table(rows)
    print(f"json: {write_json('extract_throughput', {'rows': rows, 'runs': runs})}")


if __name__ == "__main__":
    main()

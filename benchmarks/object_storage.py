"""What an extraction output weighs per track, and how fast its files go to an S3 server.

Bytes of each kind of output per track, per audio hour and per million 3.5-minute songs; then
every partition's commit (stage, upload, marker) timed to a local folder and to moto's S3
server on 127.0.0.1 (``tests/s3_server.py``); ``--end-to-end`` also times whole extractions of
the example to both (docs/object-storage.md).

    .venv/bin/python -m benchmarks.object_storage [--features DIR] [--end-to-end]
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks._common import (
    bench_parser,
    extract_command,
    make_example_catalog,
    print_table,
    run_quiet,
    write_json,
)
from pipeline.io.atomic import atomic_path
from pipeline.io.output_dir import OutputDir
from tests.s3_server import BUCKET, s3_server

MILLION = 1_000_000
SONG_S = 210.0  # a 3.5-minute song


def _example_features(workdir: Path) -> Path:
    """The example extracted once (partitions of three), cached in ``workdir``."""
    output = workdir / "features"
    if not (output / "manifest.json").is_file():
        run_quiet(extract_command(make_example_catalog(workdir), output, "--partition-size", "3"))
    return output


def bytes_by_output(features: Path) -> Counter[str]:
    """Bytes of each kind of output of an extraction folder."""
    sizes: Counter[str] = Counter()
    for shard in sorted((features / "shards").glob("part-*.tar")):
        members = 0
        with tarfile.open(shard) as tar:
            for member in tar:
                suffix = member.name.split(".", 1)[1].removesuffix(".npy")
                sizes[f"shards: {suffix}"] += member.size
                members += member.size
        sizes["shards: tar headers"] += shard.stat().st_size - members
    for folder in ("tracks", "segments", "_complete", "logs", "embeddings"):
        sizes[folder] = sum(f.stat().st_size for f in (features / folder).glob("*") if f.is_file())
    for name in ("manifest.json", "plan.json", "report.html"):
        if (features / name).is_file():
            sizes[name] = (features / name).stat().st_size
    return +sizes


def weigh(features: Path) -> dict[str, Any]:
    """Each kind of output's bytes per track, per audio hour, per million songs."""
    manifest = json.loads((features / "manifest.json").read_text())
    tracks, audio_s = manifest["summary"]["tracks"], manifest["summary"]["audio_s"]
    sizes = bytes_by_output(features)
    total = sum(sizes.values())
    rows = [
        {
            "output": name,
            "bytes_per_track": round(size / tracks),
            "mb_per_audio_hour": round(size / audio_s * 3600 / 1e6, 2),
            "tb_per_million_songs": round(size / audio_s * SONG_S * MILLION / 1e12, 3),
        }
        for name, size in [*sorted(sizes.items(), key=lambda kv: -kv[1]), ("total", total)]
    ]
    return {"tracks": tracks, "audio_s": round(audio_s, 1), "rows": rows}


def _copy(source: Path, target: Path) -> None:
    """A writer that writes ``source``'s bytes, committing as the real writers do."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _commit_all(features: Path, out: OutputDir) -> tuple[float, int]:
    """Every partition's files committed through ``out`` (copies of ``features``' files),
    then its marker; (seconds, bytes)."""
    markers = sorted((features / "_complete").glob("part-*.json"))
    moved = 0
    started = time.perf_counter()
    for path in markers:
        marker = json.loads(path.read_text())
        records = {}
        for rel in marker["files"]:
            records[rel] = out.commit_file(rel, partial(_copy, features / rel))
            moved += records[rel]["bytes"]
        out.write_marker(marker["partition"], marker | {"files": records})
    return time.perf_counter() - started, moved


def throughput(features: Path, end_to_end: bool, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    with s3_server() as server, tempfile.TemporaryDirectory() as scratch:
        os.environ.update(server.env())
        for where, location in (
            ("local disk", str(Path(scratch) / "local")),
            ("S3 server (moto, 127.0.0.1)", f"s3://{BUCKET}/bench"),
        ):
            seconds, moved = _commit_all(features, OutputDir.at(location))
            row = {"target": where, "phase": "commit (write tasks' I/O)"}
            rate = {"mb_per_s": round(moved / seconds / 1e6, 1), "bytes": moved}
            rows.append(row | {"seconds": round(seconds, 2)} | rate)
            if end_to_end:
                catalog = make_example_catalog(workdir)
                started = time.perf_counter()
                run_quiet(extract_command(catalog, location + "-e2e", "--partition-size", "3"))
                seconds = round(time.perf_counter() - started, 2)
                rows.append({"target": where, "phase": "whole extraction", "seconds": seconds})
    return rows


def main() -> None:
    parser = bench_parser(__doc__, "bench-object-storage")
    parser.add_argument("--features", type=Path, help="an extraction folder (default: example)")
    parser.add_argument("--end-to-end", action="store_true", help="also time whole extractions")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    features = args.features or _example_features(args.workdir)
    weight = weigh(features)
    print(f"{weight['tracks']} tracks, {weight['audio_s'] / 60:.1f} audio minutes: {features}")
    print_table(weight["rows"])
    speed = throughput(features, args.end_to_end, args.workdir)
    print_table(speed)
    result = {"features": str(features), "weight": weight, "throughput": speed}
    print(f"json: {write_json('object_storage', result)}")


if __name__ == "__main__":
    main()

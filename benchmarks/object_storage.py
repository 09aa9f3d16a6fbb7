"""What an extraction output weighs: bytes of each kind of output per track, per audio hour
and per million 3.5-minute songs (docs/object-storage.md).

    .venv/bin/python -m benchmarks.object_storage [--features DIR]
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
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


def main() -> None:
    parser = bench_parser(__doc__, "bench-object-storage")
    parser.add_argument("--features", type=Path, help="an extraction folder (default: example)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    features = args.features or _example_features(args.workdir)
    weight = weigh(features)
    print(f"{weight['tracks']} tracks, {weight['audio_s'] / 60:.1f} audio minutes: {features}")
    print_table(weight["rows"])
    print(f"json: {write_json('object_storage', {'features': str(features), 'weight': weight})}")


if __name__ == "__main__":
    main()

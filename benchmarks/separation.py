"""What vocal separation costs: seconds and peak memory of HTDemucs on a 5-minute song.

Randomly initialised models saved the way demucs saves them (speed does not depend on the
weights): the tests' tiny model and ``htdemucs-size``, the package's default architecture;
``--weights PATH`` adds a real file. Each measurement runs in its own process; models
interleave over ``--repeats``, medians reported (docs/vocal-separation.md).

    .venv/bin/python -m benchmarks.separation --workdir /tmp/separation-bench [--device cuda]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np

from benchmarks._common import bench_parser, print_table, run_quiet, sung_bench, write_json
from pipeline.config import DecodeConfig
from pipeline.io.catalog import read_catalog
from pipeline.records import DecodedAudio
from pipeline.stages.decode import decode_audio
from tests.separator_fixtures import save_htdemucs

SONG_S = 300.0
RATE = 16_000

_MEASURE = """
import json, resource, sys, time
import numpy as np, torch
from pipeline.models.separator import load_separator
from pipeline.stages.separate import vocal_stem
torch.set_num_threads(int(sys.argv[3]))
model = load_separator(sys.argv[1], sys.argv[4])
samples = np.load(sys.argv[2])
started = time.perf_counter()
vocal_stem(samples, 16000, model, block_s=float(sys.argv[5]), device=sys.argv[4])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "params": sum(p.numel() for p in model.parameters()),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def five_minute_song(workdir: Path) -> Path:
    """Generated full-length songs (voice -6..+6 dB under a band), joined and cut to 5 min."""
    target = workdir / "song-300s.npy"
    if target.exists():
        return target
    pieces = []
    for entry in read_catalog(sung_bench(workdir / "songs", 2)):
        audio = decode_audio(entry, DecodeConfig())
        assert isinstance(audio, DecodedAudio), audio
        pieces.append(audio.samples)
    np.save(target, np.concatenate(pieces)[: int(SONG_S * RATE)])
    return target


def measure(weights: Path, song: Path, threads: int, device: str, block_s: float) -> dict:
    command = [sys.executable, "-c", _MEASURE, str(weights), str(song), str(threads), device]
    return json.loads(run_quiet([*command, str(block_s)]).splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = bench_parser(__doc__, "separation-bench")
    parser.add_argument("--weights", type=Path, help="a real demucs .th file to measure too")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--block-s", type=float, default=60.0, help="separate.block_s (60)")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    song = five_minute_song(args.workdir)
    models = {
        "tiny (tests)": save_htdemucs(args.workdir / "tiny"),
        "htdemucs-size": save_htdemucs(
            args.workdir / "htdemucs-size", channels=48, t_layers=5, t_heads=8, t_hidden_scale=4.0
        ),
    }
    if args.weights:
        models["given weights"] = args.weights
    runs: dict[str, list[dict]] = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, weights in models.items():
            runs[name].append(measure(weights, song, args.threads, args.device, args.block_s))
    rows = []
    for name, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        rows.append(
            {
                "model": name,
                "params_m": round(results[0]["params"] / 1e6, 2),
                "device": args.device,
                "threads": args.threads,
                "s_per_5min_track": round(seconds, 1),
                "audio_s_per_s": round(SONG_S / seconds, 2),
                "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in results)),
                "repeats": len(results),
            }
        )
    print_table(rows)
    print(f"json: {write_json('separation', {'rows': rows, 'block_s': args.block_s})}")


if __name__ == "__main__":
    main()

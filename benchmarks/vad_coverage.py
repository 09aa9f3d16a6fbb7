"""What faster-whisper's BatchedInferencePipeline hears of real songs, beside the pipeline.

The batched pipeline runs Silero VAD first and transcribes only what it calls speech. On the
generated songs (espeak-ng voices) Silero hears the voice; on real singing under a band it
hears little. This runs it (batch 8, its default VAD, greedy) on the sung real recordings from
Debian (``benchmarks/real_recordings.py``) and prints, per track, the seconds its VAD kept and
the words it wrote, beside the windows ``pipeline run extract`` judged sung and their words.

    .venv/bin/python -m benchmarks.vad_coverage --workdir /tmp/vad-bench
"""

from __future__ import annotations

import argparse
import subprocess
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks._common import extract_command, faster_whisper_model, print_table, write_json
from benchmarks.real_recordings import read_labels, real_catalog
from pipeline.io.catalog import read_catalog


def main(argv: list[str] | None = None) -> None:
    from faster_whisper import BatchedInferencePipeline

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("vad-bench"))
    args = parser.parse_args(argv)
    sung = [label for label in read_labels() if label.label == "sung"]
    catalog = real_catalog(args.workdir / "real-cache", sung)
    features = args.workdir / "features"
    subprocess.run(extract_command(catalog, features), check=True, capture_output=True)
    sung_words: Counter[str] = Counter()
    sung_windows: Counter[str] = Counter()
    for row in pq.read_table(features / "segments").to_pylist():
        if row["singing"] == "sung":
            sung_windows[row["track_id"]] += 1
            sung_words[row["track_id"]] += len(row["clean_transcript"].split())
    batched = BatchedInferencePipeline(faster_whisper_model())
    rows = []
    for entry in read_catalog(catalog):
        segments, info = batched.transcribe(entry.audio_path, batch_size=8, beam_size=1)
        words = sum(len(s.text.split()) for s in segments)
        rows.append(
            {
                "track": entry.track_id,
                "duration_s": round(info.duration),
                "a2_vad_kept_s": round(info.duration_after_vad),
                "a2_words": words,
                "pipeline_sung_windows": sung_windows[entry.track_id],
                "pipeline_words": sung_words[entry.track_id],
            }
        )
    total = sum(r["duration_s"] for r in rows)
    kept = sum(r["a2_vad_kept_s"] for r in rows)
    print_table(rows)
    print(f"A2's VAD kept {kept} of {total} s ({kept / total:.0%}) of the sung real recordings")
    print(f"json: {write_json('vad_coverage', {'rows': rows, 'kept_share': kept / total})}")


if __name__ == "__main__":
    main()

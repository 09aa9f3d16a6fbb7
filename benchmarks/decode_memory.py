"""Peak memory of decoding a 5-minute and a 3-hour file, side by side, in fresh processes.

Peak is VmHWM: ru_maxrss would carry over a big parent's peak across exec on Linux.

.venv/bin/python -m benchmarks.decode_memory
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

from benchmarks._common import print_table, write_json

_PROBE = (
    "import sys, time; from pipeline.config import DecodeConfig;"
    "from pipeline.records import CatalogEntry; from pipeline.stages.decode import decode_audio;"
    "t = time.perf_counter(); a = decode_audio(CatalogEntry('t', sys.argv[1], 2), DecodeConfig());"
    "print(time.perf_counter() - t, open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"
)


def _write(path: Path, seconds: int, rate: int = 44100) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        block = (np.sin(np.arange(60 * rate * 2) * 0.01) * 8000).astype(np.int16).tobytes()
        for _ in range(seconds // 60):
            w.writeframes(block)


def main(repeats: int = 3) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, seconds in (("5 min", 300), ("3 h", 3 * 3600)):
            path = Path(tmp) / f"{seconds}.wav"
            _write(path, seconds)
            runs = [
                subprocess.run(
                    [sys.executable, "-c", _PROBE, str(path)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()
                for _ in range(repeats)
            ]
            rows.append(
                {
                    "file": f"{label} 44.1 kHz stereo wav",
                    "file_MB": round(path.stat().st_size / 1e6),
                    "median_decode_s": round(statistics.median(float(r[0]) for r in runs), 2),
                    "median_peak_rss_MB": round(statistics.median(int(r[1]) for r in runs) / 1024),
                }
            )
            path.unlink()
    print_table(rows)
    print(f"json: {write_json('decode_memory', {'rows': rows})}")


if __name__ == "__main__":
    main()

"""Where the time of `run extract` goes on full-length songs, beside faster-whisper's batched
pipeline (A2) on the same songs: a pyinstrument profile of each, in one process.

Each of ``--songs`` generated 3-4 minute songs (``make-bench --length full``, the throughput
benchmark's generator) goes through B (``prepare_track`` + ``extract_track``, every feature,
the default config), B-greedy (the same with ``whisper.temperatures=[0.0]``: A2 has no
temperature fallback, faster-whisper's batched mode keeps only the first temperature) and A2
(``BatchedInferencePipeline``, batch 8, greedy, + the same text encoder), in turn, each under
pyinstrument. A profile's time is split over the stages by summing, for each stage function,
its outermost frames; what no stage claims is ``other``. Both models are loaded before
profiling, with every core. CTranslate2's C++ calls do not show as frames: A2's decoding is
the time of its batched decoding function less the encoder calls inside it. Prints seconds
per stage (total over the songs and per song), writes JSON (with a digest of B's transcript
tokens, to compare versions of the code) and the HTML profiles to ``benchmarks/results/``.

    .venv/bin/pip install pyinstrument==5.1.3   # only for this profile; not a dependency
    .venv/bin/python -m benchmarks.profile_extract --workdir /tmp/profile-bench --songs 4
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, faster_whisper_loop, full_song_bench, write_json

# (module path suffix, function) -> stage. The outermost frame of each is counted.
B_STAGES = {
    ("stages/decode.py", "decode_audio"): "decode",
    ("stages/separate.py", "separate_vocals"): "separate (none)",
    ("stages/segment.py", "segment_audio"): "segment",
    ("stages/encode.py", "log_mel"): "log-mel",
    ("stages/encode.py", "encode"): "encoder",
    ("stages/transcribe.py", "_detect_languages"): "language detection",
    ("stages/transcribe.py", "greedy_batch"): "greedy decoding",
    ("stages/transcribe.py", "fall_back"): "sampled fallback",
    ("stages/singing.py", "judge_track"): "singing judgement",
    ("stages/decoder_states.py", "decoder_states"): "decoder-state pass",
    ("stages/embed_text.py", "embed_text"): "text embedding",
}
A2_STAGES = {
    ("faster_whisper/audio.py", "decode_audio"): "decode",
    ("faster_whisper/vad.py", "get_speech_timestamps"): "VAD",
    ("faster_whisper/feature_extractor.py", "__call__"): "log-mel",
    ("faster_whisper/transcribe.py", "encode"): "encoder",
    ("faster_whisper/transcribe.py", "detect_language"): "language detection",
    ("faster_whisper/transcribe.py", "generate_segment_batched"): "decoding",
    ("stages/embed_text.py", "embed_text"): "text embedding",
}


def stage_seconds(root: Any, stages: dict[tuple[str, str], str]) -> dict[str, float]:
    """Seconds per stage of one pyinstrument frame tree: a frame of a stage function counts
    whole and is not looked into, except for stages nested in it, whose time moves to them."""
    totals: dict[str, float] = {}

    def stage_of(frame: Any) -> str | None:
        path = (frame.file_path or "").replace("\\", "/")
        return next(
            (s for (p, f), s in stages.items() if f == frame.function and path.endswith(p)), None
        )

    def walk(frame: Any, inside: str | None) -> None:
        stage = stage_of(frame)
        if stage and stage != inside:
            totals[stage] = totals.get(stage, 0.0) + frame.time
            if inside:  # a stage within a stage (A2's encoder in its decoding)
                totals[inside] -= frame.time
            inside = stage
        for child in frame.children:
            walk(child, inside)

    walk(root, None)
    totals["other"] = root.time - sum(totals.values())
    return totals


def profiled(run: Callable[[], None], html: Path) -> tuple[float, Any]:
    """Wall seconds of ``run()`` and its pyinstrument frame tree; the HTML view goes to ``html``."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.005)
    profiler.start()
    run()
    session = profiler.stop()
    html.write_text(profiler.output_html(), encoding="utf-8")
    return session.duration, session.root_frame()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("profile-bench"))
    parser.add_argument("--songs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8, help="A2's batch size")
    args = parser.parse_args(argv)
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        raise SystemExit(
            "needs pyinstrument: `.venv/bin/pip install pyinstrument==5.1.3`"
        ) from None
    from pipeline.config import ExtractConfig, TextEmbedConfig
    from pipeline.io.catalog import read_catalog
    from pipeline.models.whisper_runtime import load_whisper
    from pipeline.stages.embed_text import clean_transcript, embed_text
    from pipeline.synth.truth import read_truth
    from pipeline.track import extract_track, prepare_track

    catalog = args.workdir / "bench" / "catalog.csv"
    full_song_bench(catalog, args.songs)
    entries = list(read_catalog(catalog))
    audio_seconds = round(sum(t.duration_s for t in read_truth(catalog).values()), 1)
    config = ExtractConfig()
    load_whisper(config.whisper)  # cached: loading is not what is profiled
    transcript = faster_whisper_loop("A2", args.batch_size)
    embed_text("warm up", TextEmbedConfig())

    tokens = hashlib.sha256()  # B's transcripts, to compare versions of the code

    def b(config: ExtractConfig) -> Callable[[], None]:
        def run() -> None:
            for entry in entries:
                features = extract_track(prepare_track(entry, config), config)
                for segment in getattr(features, "segments", ()):
                    tokens.update(repr(segment.transcript.tokens).encode())

        return run

    def a2() -> None:
        for entry in entries:
            embed_text(clean_transcript(transcript(entry.audio_path)), TextEmbedConfig())

    greedy = ExtractConfig(whisper=dataclasses.replace(config.whisper, temperatures=(0.0,)))
    runs = (("B", b(config), B_STAGES), ("B-greedy", b(greedy), B_STAGES), ("A2", a2, A2_STAGES))
    RESULTS.mkdir(exist_ok=True)
    result: dict[str, Any] = {"songs": len(entries), "audio_s": audio_seconds}
    for name, run, stages in runs:
        html = RESULTS / f"profile-extract-{name}.html"
        seconds, root = profiled(run, html)
        split = stage_seconds(root, stages)
        result[name] = {
            "seconds": round(seconds, 2),
            "stages": {k: round(v, 2) for k, v in split.items()},
        }
        if name == "B":
            result[name]["tokens_sha256"] = tokens.hexdigest()
        print(f"{name}: {seconds:.1f} s for {len(entries)} songs, profile {html}", flush=True)
        for stage, s in sorted(split.items(), key=lambda kv: -kv[1]):
            print(f"  {stage:<22} {s:7.1f} s  {s / len(entries):6.1f} s/song  {s / seconds:6.1%}")
    result["B_over_A2"] = round(result["B"]["seconds"] / result["A2"]["seconds"], 3)
    result["B_greedy_over_A2"] = round(result["B-greedy"]["seconds"] / result["A2"]["seconds"], 3)
    print(f"B / A2: {result['B_over_A2']}, B greedy only / A2: {result['B_greedy_over_A2']}")
    print(f"json: {write_json('profile-extract', result)}")


if __name__ == "__main__":
    main()

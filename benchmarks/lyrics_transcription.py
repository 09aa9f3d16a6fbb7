"""Lyrics transcription on real songs: word error rate against published lyrics, per method.

``--songs``: a folder of ``NAME.mp3`` (or any audio FFmpeg reads) beside ``NAME.txt``, its
lyrics. Methods, in this one process, models loaded first: ``pipeline[:CANDIDATE]``
(``pipeline/track.py`` with a candidate's ``--set`` items, scored on the windows judged sung),
``A`` (faster-whisper's ``transcribe`` loop) and ``A2`` (its
``BatchedInferencePipeline``). Normalisation, WER, recall and seconds are defined in
docs/lyrics-transcription.md.

    .venv/bin/python -m benchmarks.lyrics_transcription --songs ../shared/real-lyrics
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import TRANSCRIPTION_BEFORE, faster_whisper_loop, print_table, write_json

DEFAULT_SONGS = Path(__file__).resolve().parents[2] / "shared" / "real-lyrics"
AUDIO_SUFFIXES = (".mp3", ".flac", ".wav", ".ogg", ".m4a", ".opus")
# Candidate settings of the pipeline, as ``--set`` items; "default" is the shipped config.
CANDIDATES: dict[str, list[str]] = {
    "default": [],
    "greedy-only": ["whisper.temperatures=[0.0]"],
    "fallback-every-window": ["whisper.resample_sung=true"],
    "no-continuation": ["whisper.continue_rounds=0"],
    "window-language": ["whisper.keep_window_language=0.0"],
    "today": list(TRANSCRIPTION_BEFORE),
    "full-context": ["whisper.continue_context_tokens=223"],
    "greedy-dense": ["whisper.dense_beam_size=1"],
    "continue": ["whisper.dense_seek=false"],
}
_APOSTROPHES = re.compile(r"['\u2019\u2018`\u00b4]")
_NOT_WORD = re.compile(r"[^\w\s]|_")


def normalise_words(text: str) -> list[str]:
    """NFKC, lower case, apostrophes deleted (``j'te`` -> ``jte``), any other character not a
    letter or digit a space; the words whitespace separates."""
    text = _APOSTROPHES.sub("", unicodedata.normalize("NFKC", text).lower())
    return _NOT_WORD.sub(" ", text).split()


@dataclass(frozen=True)
class WordErrors:
    reference_words: int
    edits: int  # substitutions + deletions + insertions
    hits: int  # reference words the alignment matches

    @property
    def wer(self) -> float:
        return self.edits / self.reference_words if self.reference_words else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.reference_words if self.reference_words else 0.0


def word_errors(reference: list[str], hypothesis: list[str]) -> WordErrors:
    """Minimum edits turning ``reference`` into ``hypothesis``; among alignments with as few
    edits, the one matching the most words."""
    previous = [(j, 0) for j in range(len(hypothesis) + 1)]  # (edits, -hits) per prefix
    for i, word in enumerate(reference, 1):
        current = [(i, 0)]
        for j, said in enumerate(hypothesis, 1):
            edits, neg_hits = previous[j - 1]
            diagonal = (edits, neg_hits - 1) if word == said else (edits + 1, neg_hits)
            deletion = (previous[j][0] + 1, previous[j][1])
            insertion = (current[j - 1][0] + 1, current[j - 1][1])
            current.append(min(diagonal, deletion, insertion))
        previous = current
    edits, neg_hits = previous[-1]
    return WordErrors(len(reference), edits, -neg_hits)


def find_songs(folder: Path) -> list[tuple[Path, Path]]:
    """(audio, lyrics) pairs: every audio file with a ``.txt`` of the same name."""
    pairs = [
        (audio, audio.with_suffix(".txt"))
        for audio in sorted(folder.iterdir())
        if audio.suffix.lower() in AUDIO_SUFFIXES and audio.with_suffix(".txt").is_file()
    ]
    if not pairs:
        raise SystemExit(f"{folder}: no NAME.mp3 (or .flac, .wav, ...) beside a NAME.txt")
    return pairs


def pipeline_method(set_items: list[str]) -> Callable[[str], str]:
    """Audio file -> the text of its windows judged sung."""
    from pipeline.config import load_config
    from pipeline.models.whisper_runtime import load_whisper
    from pipeline.records import CatalogEntry, Rejected
    from pipeline.track import extract_tracks, prepare_track

    config = load_config(set_items=set_items)
    threads = os.cpu_count() or 0
    load_whisper(config.whisper, threads)

    def transcribe(audio: str) -> str:
        track = prepare_track(CatalogEntry(Path(audio).stem, audio, 1), config, threads)
        (features,) = extract_tracks([track], config, threads)
        if isinstance(features, Rejected):
            if features.reason != "no_singing":
                raise RuntimeError(f"{audio}: {features.reason} ({features.detail})")
            return ""  # no window judged sung
        return " ".join(s.transcript.text for s in features.segments if s.sung)

    return transcribe


def score(method: str, songs: list[tuple[Path, Path]], run: Callable[[str], str]) -> list[dict]:
    """One row per song."""
    rows: list[dict[str, Any]] = []
    for audio, lyrics in songs:
        start = time.perf_counter()
        words = normalise_words(run(str(audio)))
        seconds = time.perf_counter() - start
        errors = word_errors(normalise_words(lyrics.read_text(encoding="utf-8")), words)
        rows.append(
            {
                "method": method,
                "song": audio.stem,
                "wer": round(errors.wer, 3),
                "recall": round(errors.recall, 3),
                "words": len(words),
                "lyric_words": errors.reference_words,
                "edits": errors.edits,
                "seconds": round(seconds, 1),
            }
        )
        print(f"  {method}: {audio.stem} {seconds:.1f} s", flush=True)
    return rows


def pooled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method: edits over lyric words of all songs, mean recall, words, median seconds."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        out.append(
            {
                "method": method,
                "pooled_wer": round(
                    sum(r["edits"] for r in mine) / sum(r["lyric_words"] for r in mine), 3
                ),
                "mean_recall": round(statistics.mean(r["recall"] for r in mine), 3),
                "words": sum(r["words"] for r in mine),
                "median_s_per_song": round(statistics.median(r["seconds"] for r in mine), 1),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--songs", type=Path, default=DEFAULT_SONGS, help="(%(default)s)")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["A", "A2", *(f"pipeline:{c}" for c in CANDIDATES)],
        help=f"A, A2, pipeline:CANDIDATE (candidates: {', '.join(CANDIDATES)})",
    )
    args = parser.parse_args()
    songs = find_songs(args.songs)
    rows: list[dict[str, Any]] = []
    for method in args.methods:
        if method in ("A", "A2"):
            run = faster_whisper_loop(method)
        else:
            candidate = method.partition(":")[2] or "default"
            run = pipeline_method(CANDIDATES[candidate])
        rows += score(method, songs, run)
        summary = pooled(rows)  # written after each method: a long run keeps what it measured
        path = write_json(
            "lyrics_transcription",
            {"songs": str(args.songs), "candidates": CANDIDATES, "rows": rows, "pooled": summary},
        )
    print_table(rows)
    print()
    print_table(summary)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()

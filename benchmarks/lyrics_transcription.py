"""Lyrics transcription on real songs: word error rate against published lyrics, per method.

``--songs``: a folder of ``NAME.mp3`` (or any audio FFmpeg reads) beside ``NAME.txt``, its
lyrics. Methods, in this one process, models loaded first: ``pipeline[:CANDIDATE]``
(``pipeline/track.py`` with a candidate's ``--set`` items, scored on the windows judged sung),
``A`` (faster-whisper's ``transcribe`` loop) and ``A2`` (its
``BatchedInferencePipeline``). Normalisation, WER, recall and seconds are defined in
docs/lyrics-transcription.md. ``A`` samples its fallback without a seed: its row per song,
and its pooled row, are the medians of ``--repeats`` runs (3 unless given). Beside the table,
a leave-one-out view: for each song, the candidate with the lowest pooled WER on the others,
scored on it, so a setting that helps one song only is visible.

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
    "seek": ["whisper.dense_seek=true"],
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


def score(
    method: str, songs: list[tuple[Path, Path]], run: Callable[[str], str], repeat: int = 0
) -> list[dict]:
    """One row per song, ``repeat`` numbering the run of this method it comes from."""
    rows: list[dict[str, Any]] = []
    for audio, lyrics in songs:
        start = time.perf_counter()
        words = normalise_words(run(str(audio)))
        seconds = time.perf_counter() - start
        errors = word_errors(normalise_words(lyrics.read_text(encoding="utf-8")), words)
        rows.append(
            {
                "method": method,
                "repeat": repeat,
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


def _pooled_run(mine: list[dict[str, Any]]) -> dict[str, float]:
    """One run of one method over the songs: pooled WER, mean recall, words, median seconds."""
    return {
        "pooled_wer": round(sum(r["edits"] for r in mine) / sum(r["lyric_words"] for r in mine), 3),
        "mean_recall": round(statistics.mean(r["recall"] for r in mine), 3),
        "words": sum(r["words"] for r in mine),
        "median_s_per_song": round(statistics.median(r["seconds"] for r in mine), 1),
    }


def pooled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method: each run pooled over all songs (edits over lyric words, mean recall, words,
    median seconds), then the median of each figure over the method's runs."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        runs = [
            _pooled_run([r for r in mine if r.get("repeat", 0) == repeat])
            for repeat in dict.fromkeys(r.get("repeat", 0) for r in mine)
        ]
        figures = {key: round(statistics.median(run[key] for run in runs), 3) for key in runs[0]}
        out.append({"method": method, "runs": len(runs), **figures})
    return out


MEDIAN_FIELDS = ("wer", "recall", "words", "edits", "seconds")


def median_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method and song: the median of each figure over the method's runs (with an
    odd number of runs, each figure is one run's), and ``runs``, how many there were."""
    out = []
    for method, song in dict.fromkeys((r["method"], r["song"]) for r in rows):
        mine = [r for r in rows if r["method"] == method and r["song"] == song]
        out.append(
            {
                "method": method,
                "song": song,
                "runs": len(mine),
                **{key: statistics.median(r[key] for r in mine) for key in MEDIAN_FIELDS},
                "lyric_words": mine[0]["lyric_words"],
            }
        )
    return out


def leave_one_out(
    rows: list[dict[str, Any]], candidates: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """From one row per method and song (``median_rows``): for each song held out, the
    candidate with the lowest pooled WER on the other songs (the first listed on a tie), and its
    WER and recall on the held-out song; then, per candidate, on how many held-out songs it was
    chosen. A candidate chosen on one song only helped that song alone."""
    by_key = {(r["method"], r["song"]): r for r in rows}
    songs = list(dict.fromkeys(r["song"] for r in rows))
    missing = [(m, s) for m in candidates for s in songs if (m, s) not in by_key]
    if missing:
        raise ValueError(f"leave-one-out needs every candidate on every song; missing {missing}")
    if len(songs) < 2:
        return [], []  # nothing to choose on
    held_out_rows = []
    for held_out in songs:
        others = [s for s in songs if s != held_out]

        def others_wer(method: str, others: list[str] = others) -> float:
            mine = [by_key[(method, s)] for s in others]
            return sum(r["edits"] for r in mine) / sum(r["lyric_words"] for r in mine)

        chosen = min(candidates, key=others_wer)  # min keeps the first of equals
        row = by_key[(chosen, held_out)]
        held_out_rows.append(
            {
                "held_out": held_out,
                "chosen": chosen,
                "others_pooled_wer": round(others_wer(chosen), 3),
                "wer": row["wer"],
                "recall": row["recall"],
            }
        )
    chosen_on = [
        {"method": m, "chosen_on": sum(r["chosen"] == m for r in held_out_rows)} for m in candidates
    ]
    return held_out_rows, chosen_on


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--songs", type=Path, default=DEFAULT_SONGS, help="(%(default)s)")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["A", "A2", *(f"pipeline:{c}" for c in CANDIDATES)],
        help=f"A, A2, pipeline:CANDIDATE (candidates: {', '.join(CANDIDATES)})",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="runs of each method, medians reported (default: 3 for A, whose fallback samples "
        "without a seed; 1 for the others, which repeat exactly)",
    )
    args = parser.parse_args()
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    songs = find_songs(args.songs)
    rows: list[dict[str, Any]] = []
    for method in args.methods:
        if method in ("A", "A2"):
            run = faster_whisper_loop(method)
        else:
            candidate = method.partition(":")[2] or "default"
            run = pipeline_method(CANDIDATES[candidate])
        repeats = args.repeats or (3 if method == "A" else 1)
        for repeat in range(repeats):
            rows += score(method, songs, run, repeat)
            path = write_results(args.songs, rows)  # a long run keeps what it measured
    per_song = median_rows(rows)
    print_table(per_song)
    print()
    print_table(pooled(rows))
    print("\nleave-one-out: the candidate with the lowest pooled WER on the other songs")
    held_out, chosen_on = leave_one_out(per_song, choosable(args.methods))
    print_table(held_out)
    print()
    print_table(chosen_on)
    print(f"\nwrote {path}")


def choosable(methods: list[str]) -> list[str]:
    """The methods leave-one-out chooses among: the pipeline's candidates, or every method
    when none is the pipeline's."""
    return [m for m in methods if m.startswith("pipeline")] or list(methods)


def write_results(songs: Path, rows: list[dict[str, Any]]) -> Path:
    """The JSON file: every run's rows, the medians per song, pooled, and leave-one-out."""
    per_song = median_rows(rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    held_out, chosen_on = leave_one_out(per_song, choosable(methods))
    return write_json(
        "lyrics_transcription",
        {
            "songs": str(songs),
            "candidates": CANDIDATES,
            "rows": rows,
            "per_song": per_song,
            "pooled": pooled(rows),
            "leave_one_out": {"held_out": held_out, "chosen_on": chosen_on},
        },
    )


if __name__ == "__main__":
    main()

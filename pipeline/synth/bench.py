"""``pipeline make-bench``: a generated versions dataset to train, test and score detectors on.

Each work gets lyric lines composed from the phrase table (``lyrics.py``) and a tune; its
versions change language (some are translated), espeak-ng voice, tempo, base pitch, key,
band (guitar, lead solo, reverb), voice level (-6 to +6 dB against the band), container and
sample rate. Distractors are sung works with one version. Instrumentals (full band, some with
a synth lead in the vocal range) and spoken-word tracks (narration over a quiet pad) are
works of their own: the cases a singing detector must reject or may keep. Every draw comes
from a generator seeded by (seed, kind of track, index), so a seed gives the same files and
adding works leaves the earlier ones unchanged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pipeline.synth.catalog import write_catalog
from pipeline.synth.lyrics import LANGUAGES, Line, lyric_lines, sentences
from pipeline.synth.spec import TrackSpec
from pipeline.synth.structure import LENGTHS

VOICES = {
    "en": ("en", "en-us"),
    "es": ("es", "es-419"),
    "fr": ("fr", "fr-be"),
    "de": ("de",),
    "it": ("it",),
    "pt": ("pt", "pt-br"),
    "nl": ("nl",),
}
VARIANTS = ("m1", "m2", "m3", "m4", "f1", "f2", "f3", "f4")
CONTAINERS = ("wav", "flac", "mp3", "ogg", "m4a")
SAMPLE_RATES_HZ = (16_000, 22_050, 32_000, 44_100, 48_000)
LINES_PER_WORK = 4  # sung twice in a short song (~35-50 s), as verses and choruses in a full one
SPOKEN_LINES = 6
TRANSLATED_SHARE = 0.4  # of the versions after the first
REVERB_SHARE = 0.4  # of all tracks
GUITAR_SHARE = 0.35
LEAD_SHARE = 0.3  # sung tracks with a synth solo in the breaks
INSTRUMENTAL_LEAD_SHARE = 0.5  # instrumentals with a lead where a voice would be
VOCAL_DB = (-6.0, 6.0)  # sung: where records put the voice
SPOKEN_DB = (3.0, 12.0)  # narration sits above its pad
# Per-version seeds for the kinds of track, so each kind can grow without moving the others.
WORK, DISTRACTOR, INSTRUMENTAL, SPOKEN = range(4)


def draw_melody(rng: np.random.Generator, length: int = 10) -> tuple[int, ...]:
    """A work's tune: a walk over scale degrees, kept within a singable -2..+5."""
    steps = rng.choice([-2, -1, -1, 0, 1, 1, 2], size=length)
    return tuple(int(d) for d in np.clip(np.cumsum(steps), -2, 5))


def _band(rng: np.random.Generator) -> dict:
    """Key, tempo, room and file settings shared by every kind of track."""
    return {
        "key_hz": float(110.0 * 2 ** (rng.integers(12) / 12)),
        "bpm": int(rng.integers(80, 141)),
        "container": str(rng.choice(CONTAINERS)),
        "sample_rate_hz": int(rng.choice(SAMPLE_RATES_HZ)),
        "reverb_s": float(rng.uniform(0.3, 1.2)) if rng.random() < REVERB_SHARE else 0.0,
        "guitar": bool(rng.random() < GUITAR_SHARE),
    }


def _voice(rng: np.random.Generator, language: str) -> str:
    return f"{rng.choice(VOICES[language])}+{rng.choice(VARIANTS)}"


def _sung(
    rng: np.random.Generator,
    track_id: str,
    work_id: str,
    language: str,
    lines: list[Line],
    melody: tuple[int, ...],
    minor: bool,
    length: str,
) -> TrackSpec:
    """One sung rendition: every performance and file setting drawn from ``rng``."""
    text = sentences(lines, language)
    return TrackSpec(
        track_id=track_id,
        work_id=work_id,
        title=text[0].rstrip("."),
        language=language,
        kind="sung",
        lines=text,
        voice=_voice(rng, language),
        words_per_minute=int(rng.integers(80, 111)),
        pitch=int(rng.integers(20, 61)),  # leaves room for the tune within espeak's 0-99
        melody=melody,
        minor=minor,
        vocal_db=round(float(rng.uniform(*VOCAL_DB)), 2),
        lead=bool(rng.random() < LEAD_SHARE),
        length=length,
        seed=int(rng.integers(2**31)),
        **_band(rng),
    )


def _instrumental(rng: np.random.Generator, index: int, length: str) -> TrackSpec:
    work_id = f"i{index:03d}"
    return TrackSpec(
        track_id=f"{work_id}-instrumental",
        work_id=work_id,
        title=f"Instrumental {index}",
        language="",
        kind="instrumental",
        lines=(),
        voice="",
        words_per_minute=0,
        pitch=0,
        melody=draw_melody(rng),
        minor=bool(rng.random() < 0.4),
        vocal_db=None,
        lead=bool(rng.random() < INSTRUMENTAL_LEAD_SHARE),
        length=length,
        seed=int(rng.integers(2**31)),
        **_band(rng),
    )


def _spoken(rng: np.random.Generator, index: int, length: str) -> TrackSpec:
    language = str(rng.choice(LANGUAGES))
    work_id = f"s{index:03d}"
    text = sentences(lyric_lines(rng, SPOKEN_LINES), language)
    return TrackSpec(
        track_id=f"{work_id}-{language}",
        work_id=work_id,
        title=text[0].rstrip("."),
        language=language,
        kind="spoken",
        lines=text,
        voice=_voice(rng, language),
        words_per_minute=int(rng.integers(140, 176)),
        pitch=int(rng.integers(25, 81)),
        melody=(0,),
        minor=False,
        vocal_db=round(float(rng.uniform(*SPOKEN_DB)), 2),
        length=length,
        seed=int(rng.integers(2**31)),
        **_band(rng),
    )


def bench_tracks(
    works: int,
    versions_per_work: int,
    distractors: int,
    seed: int,
    instrumentals: int = 0,
    spoken: int = 0,
    length: str = "short",
) -> list[TrackSpec]:
    """The dataset's tracks: ``works`` x ``versions_per_work``, the distractors, the
    instrumentals, then the spoken-word tracks."""
    if length not in LENGTHS:
        raise ValueError(f"length must be one of {LENGTHS}, got {length!r}")
    tracks = []
    for w in range(works):
        rng = np.random.default_rng([seed, WORK, w])
        work_id = f"w{w:03d}"
        lines = lyric_lines(rng, LINES_PER_WORK)
        original = str(rng.choice(LANGUAGES))
        melody, minor = draw_melody(rng), bool(rng.random() < 0.4)
        for v in range(versions_per_work):
            language = original
            if v > 0 and rng.random() < TRANSLATED_SHARE:
                language = str(rng.choice([x for x in LANGUAGES if x != original]))
            track_id = f"{work_id}-v{v}-{language}"
            tracks.append(_sung(rng, track_id, work_id, language, lines, melody, minor, length))
    for d in range(distractors):
        rng = np.random.default_rng([seed, DISTRACTOR, d])
        language = str(rng.choice(LANGUAGES))
        work_id = f"d{d:03d}"
        lines = lyric_lines(rng, LINES_PER_WORK)
        melody, minor = draw_melody(rng), bool(rng.random() < 0.4)
        track_id = f"{work_id}-{language}"
        tracks.append(_sung(rng, track_id, work_id, language, lines, melody, minor, length))
    for i in range(instrumentals):
        tracks.append(_instrumental(np.random.default_rng([seed, INSTRUMENTAL, i]), i, length))
    for s in range(spoken):
        tracks.append(_spoken(np.random.default_rng([seed, SPOKEN, s]), s, length))
    return tracks


def make_bench(
    output: Path,
    works: int = 60,
    versions_per_work: int = 3,
    distractors: int = 30,
    seed: int = 0,
    instrumentals: int = 20,
    spoken: int = 5,
    length: str = "short",
) -> Path:
    """Write the audio and ``catalog.csv`` under ``output``; return the catalog path."""
    tracks = bench_tracks(
        works, versions_per_work, distractors, seed, instrumentals, spoken, length
    )
    return write_catalog(tracks, output)


def _make_bench(args: argparse.Namespace) -> int:
    if (
        args.works < 1
        or args.versions_per_work < 1
        or min(args.distractors, args.instrumentals, args.spoken) < 0
    ):
        print(
            "error: need --works >= 1, --versions-per-work >= 1, and --distractors, "
            "--instrumentals, --spoken >= 0",
            file=sys.stderr,
        )
        return 2
    catalog = make_bench(
        args.output,
        args.works,
        args.versions_per_work,
        args.distractors,
        args.seed,
        args.instrumentals,
        args.spoken,
        args.length,
    )
    print(f"bench catalog: {catalog}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``pipeline make-bench``."""
    p = commands.add_parser("make-bench", help="generate a versions dataset to train and test on")
    p.add_argument("--output", type=Path, default=Path("bench"))
    p.add_argument("--works", type=int, default=60, help="works with several versions (60)")
    p.add_argument("--versions-per-work", type=int, default=3, help="versions of each work (3)")
    p.add_argument("--distractors", type=int, default=30, help="songs with one version (30)")
    p.add_argument("--instrumentals", type=int, default=20, help="tracks without voice (20)")
    p.add_argument("--spoken", type=int, default=5, help="spoken-word tracks (5)")
    p.add_argument(
        "--length", choices=LENGTHS, default="short", help="short ~35-50 s or full 3-4 min"
    )
    p.add_argument("--seed", type=int, default=0, help="same seed, same files (0)")
    p.set_defaults(handler=_make_bench)

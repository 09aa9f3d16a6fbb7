"""``pipeline make-example``: ten short songs, mixed like records, with their ground truth.

Three works have several versions each (one of them translated), one song has a single
version, and ``interlude`` is an instrumental that the pipeline should reject for having no
singing. Every song has an instrumental intro, a break and an outro (30-40 % without voice);
the nine sung tracks spread the voice from -6 to +6 dB against the band. Files use every
common container and several sample rates. Short songs (~35-50 s) keep the test suite fast.
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

from pipeline.synth.catalog import write_catalog
from pipeline.synth.spec import TrackSpec

RIVER_EN = (
    "The river runs down to the sea.",
    "Carry my heart back home to me.",
    "Under the bridge the water sings.",
    "Hold on to the little things.",
)
RIVER_ES = (
    "El río corre hacia el mar.",
    "Lleva mi corazón a casa ya.",
    "Bajo el puente canta el agua.",
    "Guarda las pequeñas cosas.",
)
LANTERN_FR = (
    "Allume la lanterne dans la nuit.",
    "Je marche seul jusqu'au matin.",
    "Les étoiles dansent sur le chemin.",
    "Tu es la lumière de ma vie.",
)
LANTERN_EN = (
    "Light the lantern in the night.",
    "I walk alone until the morning.",
    "The stars are dancing on the road.",
    "You are the light of my life.",
)
MORNING_DE = (
    "Guten Morgen, kleine Stadt.",
    "Die Sonne scheint auf jedes Dach.",
    "Der Bäcker singt, die Glocke klingt.",
    "Ein neuer Tag beginnt.",
)
WIND_IT = (
    "Il vento porta la mia voce.",
    "Sopra le colline verdi.",
    "Canto per te ogni sera.",
    "Finché la luna non si spegne.",
)
# Each work's tune as scale degrees; its versions sing it in their own key.
MELODIES = {
    "river": (0, 2, 4, 4, 3, 2, 1, 0, -1, 0),
    "lantern": (4, 3, 2, 0, 2, 3, 4, 4, 2, 1),
    "morning": (0, 0, 2, 4, 2, 0, 1, 2, 1, -1),
    "wind": (2, 4, 3, 2, 1, 0, 1, 2, 0, -2),
    "interlude": (0, 2, 4, 2, 5, 4, 2, 1),
}


def _track(
    track_id: str,
    work_id: str,
    title: str,
    language: str,
    voice: str,
    words_per_minute: int,
    pitch: int,
    lines: tuple[str, ...],
    key_hz: float,
    bpm: int,
    container: str,
    sample_rate_hz: int,
    vocal_db: float | None,
    guitar: bool = False,
    lead: bool = False,
    reverb_s: float = 0.0,
) -> TrackSpec:
    return TrackSpec(
        track_id=track_id,
        work_id=work_id,
        title=title,
        language=language,
        kind="sung" if lines else "instrumental",
        lines=lines,
        voice=voice,
        words_per_minute=words_per_minute,
        pitch=pitch,
        melody=MELODIES[work_id],
        key_hz=key_hz,
        minor=work_id in {"lantern", "wind"},
        bpm=bpm,
        vocal_db=vocal_db,
        container=container,
        sample_rate_hz=sample_rate_hz,
        guitar=guitar,
        lead=lead,
        reverb_s=reverb_s,
        seed=zlib.crc32(track_id.encode()),
    )


# The tracks whose words the extraction tests look for sit loudest; -6, 0 and +6 dB included.
TRACKS = (
    _track(
        "river-en-1", "river", "The River", "en", "en+m3", 90, 40, RIVER_EN, 130.8, 96,
        "wav", 44_100, 6.0,
    ),
    _track(
        "river-en-2", "river", "The River", "en", "en+f3", 95, 55, RIVER_EN, 220.0, 120,
        "mp3", 44_100, -3.0, guitar=True,
    ),
    _track(
        "river-es", "river", "El Río", "es", "es", 90, 45, RIVER_ES, 174.6, 104,
        "ogg", 48_000, 1.5,
    ),
    _track(
        "lantern-fr-1", "lantern", "La Lanterne", "fr", "fr", 85, 45, LANTERN_FR, 146.8, 90,
        "flac", 44_100, 0.0,
    ),
    _track(
        "lantern-fr-2", "lantern", "La Lanterne", "fr", "fr+f2", 95, 55, LANTERN_FR, 196.0,
        112, "m4a", 44_100, -4.5, lead=True,
    ),
    _track(
        "lantern-en", "lantern", "The Lantern", "en", "en-us", 90, 45, LANTERN_EN, 164.8, 100,
        "wav", 22_050, 4.5,
    ),
    _track(
        "morning-de-1", "morning", "Guten Morgen", "de", "de", 85, 45, MORNING_DE, 110.0, 96,
        "mp3", 32_000, -1.5, reverb_s=0.8,
    ),
    _track(
        "morning-de-2", "morning", "Guten Morgen", "de", "de+f1", 95, 55, MORNING_DE, 123.5,
        126, "flac", 48_000, 3.0, guitar=True,
    ),
    _track(
        "wind-it", "wind", "Il Vento", "it", "it", 90, 45, WIND_IT, 138.6, 108,
        "ogg", 44_100, -6.0,
    ),
    _track(
        "interlude", "interlude", "Interlude", "", "", 0, 0, (), 155.6, 88,
        "wav", 44_100, None, guitar=True,
    ),
)  # fmt: skip


def make_example(output: Path) -> Path:
    """Write the audio files and ``catalog.csv`` under ``output``; return the catalog path."""
    return write_catalog(TRACKS, output)


def _make_example(args: argparse.Namespace) -> int:
    print(f"example catalog: {make_example(args.output)}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``pipeline make-example``."""
    p = commands.add_parser("make-example", help="generate a small example catalog")
    p.add_argument("--output", type=Path, default=Path("example"))
    p.set_defaults(handler=_make_example)

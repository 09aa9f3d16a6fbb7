"""``pipeline make-bench``: a generated versions dataset big enough to train and test on.

Each work gets a few lyric lines composed from a phrase table (subject, verb, place, time) that
exists in seven languages, so a translated version says the same thing in other words. Its
versions change language, espeak-ng voice, tempo, pitch, key, accompaniment tempo, reverb,
container and sample rate; distractors are works with one version. The audio is rendered by
``pipeline.example``. Every draw comes from a generator seeded by (seed, work), so a seed gives
the same files, and adding works leaves the earlier ones unchanged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pipeline.example import ExampleTrack, write_catalog

LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "nl")
# One tuple per slot, one entry per language in LANGUAGES order.
SUBJECTS = (
    ("the river", "el río", "la rivière", "der Fluss", "il fiume", "o rio", "de rivier"),
    ("the old man", "el viejo", "le vieil homme", "der alte Mann", "il vecchio", "o velho",
     "de oude man"),
    ("my heart", "mi corazón", "mon cœur", "mein Herz", "il mio cuore", "o meu coração",
     "mijn hart"),
    ("the little bird", "el pajarito", "le petit oiseau", "der kleine Vogel",
     "il piccolo uccello", "o passarinho", "het kleine vogeltje"),
    ("the night train", "el tren de la noche", "le train de nuit", "der Nachtzug",
     "il treno della notte", "o comboio da noite", "de nachttrein"),
    ("the summer wind", "el viento del verano", "le vent d'été", "der Sommerwind",
     "il vento d'estate", "o vento de verão", "de zomerwind"),
    ("the young girl", "la joven", "la jeune fille", "das junge Mädchen", "la ragazza",
     "a menina", "het jonge meisje"),
    ("the silver moon", "la luna de plata", "la lune d'argent", "der silberne Mond",
     "la luna d'argento", "a lua de prata", "de zilveren maan"),
    ("the tired sailor", "el marinero cansado", "le marin fatigué", "der müde Seemann",
     "il marinaio stanco", "o marinheiro cansado", "de moede zeeman"),
    ("our mother", "nuestra madre", "notre mère", "unsere Mutter", "nostra madre",
     "a nossa mãe", "onze moeder"),
    ("the black horse", "el caballo negro", "le cheval noir", "das schwarze Pferd",
     "il cavallo nero", "o cavalo preto", "het zwarte paard"),
    ("the city", "la ciudad", "la ville", "die Stadt", "la città", "a cidade", "de stad"),
)  # fmt: skip
VERBS = (
    ("sings", "canta", "chante", "singt", "canta", "canta", "zingt"),
    ("dances", "baila", "danse", "tanzt", "balla", "dança", "danst"),
    ("sleeps", "duerme", "dort", "schläft", "dorme", "dorme", "slaapt"),
    ("waits", "espera", "attend", "wartet", "aspetta", "espera", "wacht"),
    ("cries", "llora", "pleure", "weint", "piange", "chora", "huilt"),
    ("dreams", "sueña", "rêve", "träumt", "sogna", "sonha", "droomt"),
    ("runs", "corre", "court", "läuft", "corre", "corre", "rent"),
    ("burns", "arde", "brûle", "brennt", "brucia", "queima", "brandt"),
    ("falls", "cae", "tombe", "fällt", "cade", "cai", "valt"),
    ("laughs", "ríe", "rit", "lacht", "ride", "ri", "lacht"),
)
PLACES = (
    ("under the bridge", "bajo el puente", "sous le pont", "unter der Brücke", "sotto il ponte",
     "debaixo da ponte", "onder de brug"),
    ("by the sea", "junto al mar", "au bord de la mer", "am Meer", "vicino al mare",
     "junto ao mar", "bij de zee"),
    ("in the garden", "en el jardín", "dans le jardin", "im Garten", "nel giardino", "no jardim",
     "in de tuin"),
    ("on the mountain", "en la montaña", "sur la montagne", "auf dem Berg", "sulla montagna",
     "na montanha", "op de berg"),
    ("in the rain", "bajo la lluvia", "sous la pluie", "im Regen", "sotto la pioggia", "na chuva",
     "in de regen"),
    ("near the church", "cerca de la iglesia", "près de l'église", "bei der Kirche",
     "vicino alla chiesa", "perto da igreja", "bij de kerk"),
    ("in the old house", "en la casa vieja", "dans la vieille maison", "im alten Haus",
     "nella vecchia casa", "na casa velha", "in het oude huis"),
    ("on the road", "en el camino", "sur la route", "auf der Straße", "sulla strada",
     "na estrada", "op de weg"),
    ("in the snow", "en la nieve", "dans la neige", "im Schnee", "nella neve", "na neve",
     "in de sneeuw"),
    ("across the field", "por el campo", "à travers le champ", "über das Feld",
     "attraverso il campo", "pelo campo", "over het veld"),
)  # fmt: skip
TIMES = (
    ("tonight", "esta noche", "ce soir", "heute Nacht", "stanotte", "esta noite", "vannacht"),
    ("every morning", "cada mañana", "chaque matin", "jeden Morgen", "ogni mattina",
     "cada manhã", "elke ochtend"),
    ("all day long", "todo el día", "toute la journée", "den ganzen Tag", "tutto il giorno",
     "o dia todo", "de hele dag"),
    ("forever", "para siempre", "pour toujours", "für immer", "per sempre", "para sempre",
     "voor altijd"),
    ("in winter", "en invierno", "en hiver", "im Winter", "d'inverno", "no inverno",
     "in de winter"),
    ("at dawn", "al amanecer", "à l'aube", "im Morgengrauen", "all'alba", "ao amanhecer",
     "bij dageraad"),
    ("once again", "otra vez", "encore une fois", "noch einmal", "ancora una volta",
     "mais uma vez", "nog een keer"),
    ("without me", "sin mí", "sans moi", "ohne mich", "senza di me", "sem mim", "zonder mij"),
)  # fmt: skip
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
LINES_PER_WORK = 3  # sung twice, about 20 s: one 30 s segment per track
TRANSLATED_SHARE = 0.4  # of the versions after the first
REVERB_SHARE = 0.4  # of all tracks


def lyric_lines(rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """A work's lines as indices into (SUBJECTS, VERBS, PLACES, TIMES)."""
    sizes = (len(SUBJECTS), len(VERBS), len(PLACES), len(TIMES))
    return [tuple(int(rng.integers(n)) for n in sizes) for _ in range(LINES_PER_WORK)]


def lyrics(lines: list[tuple[int, int, int, int]], language: str) -> str:
    """The lines in ``language``, one sentence each."""
    column = LANGUAGES.index(language)
    sentences = []
    for s, v, p, t in lines:
        words = f"{SUBJECTS[s][column]} {VERBS[v][column]} {PLACES[p][column]} {TIMES[t][column]}"
        sentences.append(words[0].upper() + words[1:] + ".")
    return " ".join(sentences)


def _version(
    rng: np.random.Generator, track_id: str, work_id: str, language: str, text: str
) -> ExampleTrack:
    """One rendition: every performance and file setting drawn from ``rng``."""
    voice = f"{rng.choice(VOICES[language])}+{rng.choice(VARIANTS)}"
    return ExampleTrack(
        track_id=track_id,
        work_id=work_id,
        title=text.split(".")[0],
        language=language,
        voice=voice,
        words_per_minute=int(rng.integers(120, 171)),
        pitch=int(rng.integers(25, 81)),
        lyrics=text,
        key_hz=float(110.0 * 2 ** (rng.integers(12) / 12)),
        bpm=int(rng.integers(80, 141)),
        container=str(rng.choice(CONTAINERS)),
        sample_rate_hz=int(rng.choice(SAMPLE_RATES_HZ)),
        reverb_s=float(rng.uniform(0.3, 1.2)) if rng.random() < REVERB_SHARE else 0.0,
    )


def bench_tracks(
    works: int, versions_per_work: int, distractors: int, seed: int
) -> list[ExampleTrack]:
    """The dataset's tracks: ``works`` x ``versions_per_work``, then the distractors."""
    tracks = []
    for w in range(works):
        rng = np.random.default_rng([seed, 0, w])
        work_id = f"w{w:03d}"
        lines = lyric_lines(rng)
        original = str(rng.choice(LANGUAGES))
        for v in range(versions_per_work):
            language = original
            if v > 0 and rng.random() < TRANSLATED_SHARE:
                language = str(rng.choice([x for x in LANGUAGES if x != original]))
            track_id = f"{work_id}-v{v}-{language}"
            tracks.append(_version(rng, track_id, work_id, language, lyrics(lines, language)))
    for d in range(distractors):
        rng = np.random.default_rng([seed, 1, d])
        language = str(rng.choice(LANGUAGES))
        work_id = f"d{d:03d}"
        text = lyrics(lyric_lines(rng), language)
        tracks.append(_version(rng, f"{work_id}-{language}", work_id, language, text))
    return tracks


def make_bench(
    output: Path, works: int = 60, versions_per_work: int = 3, distractors: int = 30, seed: int = 0
) -> Path:
    """Write the audio and ``catalog.csv`` under ``output``; return the catalog path."""
    return write_catalog(bench_tracks(works, versions_per_work, distractors, seed), output)


def _make_bench(args: argparse.Namespace) -> int:
    if args.works < 1 or args.versions_per_work < 1 or args.distractors < 0:
        print(
            "error: need --works >= 1, --versions-per-work >= 1, --distractors >= 0",
            file=sys.stderr,
        )
        return 2
    catalog = make_bench(
        args.output, args.works, args.versions_per_work, args.distractors, args.seed
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
    p.add_argument("--seed", type=int, default=0, help="same seed, same files (0)")
    p.set_defaults(handler=_make_bench)

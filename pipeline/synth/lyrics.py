"""The phrase table the bench composes lyrics from, in seven languages.

A line is subject, verb, place and time; each slot's entries exist in every language, so a
translated version says the same thing in other words (a cover in another language).
"""

from __future__ import annotations

import numpy as np

Line = tuple[int, int, int, int]  # indices into SUBJECTS, VERBS, PLACES, TIMES

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


def lyric_lines(rng: np.random.Generator, count: int) -> list[Line]:
    """``count`` lines as indices into (SUBJECTS, VERBS, PLACES, TIMES)."""
    return [
        (
            int(rng.integers(len(SUBJECTS))),
            int(rng.integers(len(VERBS))),
            int(rng.integers(len(PLACES))),
            int(rng.integers(len(TIMES))),
        )
        for _ in range(count)
    ]


def sentences(lines: list[Line], language: str) -> tuple[str, ...]:
    """The lines in ``language``, one capitalised sentence each."""
    column = LANGUAGES.index(language)
    out = []
    for s, v, p, t in lines:
        words = f"{SUBJECTS[s][column]} {VERBS[v][column]} {PLACES[p][column]} {TIMES[t][column]}"
        out.append(words[0].upper() + words[1:] + ".")
    return tuple(out)


def lyrics(lines: list[Line], language: str) -> str:
    """The lines in ``language`` as one text."""
    return " ".join(sentences(lines, language))

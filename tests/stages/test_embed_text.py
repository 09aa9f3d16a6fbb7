import unicodedata

import numpy as np
import pytest

from pipeline.config import TextEmbedConfig
from pipeline.stages.embed_text import (
    MAX_TOKENS,
    _encoder,
    clean_transcript,
    embed_document,
    embed_text,
    split_pieces,
    token_chunks,
)


def test_clean_up_drops_boilerplate_and_collapses_repeats() -> None:
    assert clean_transcript("Thank you. la la la la love me, love me") == "la love me, love me"
    assert clean_transcript("[Music] musical night") == "musical night"
    assert clean_transcript("  ") == ""


def test_pieces_respect_word_boundaries_and_length() -> None:
    text = " ".join(["word"] * 100)
    pieces = split_pieces(text, 50)
    assert all(len(p) <= 50 for p in pieces)
    assert " ".join(pieces) == text


def test_short_text_has_no_target() -> None:
    assert embed_text("only three words", TextEmbedConfig()) is None


def test_translations_are_closer_than_unrelated_lyrics() -> None:
    config = TextEmbedConfig()
    english = embed_text("The river runs down to the sea, carry my heart back home", config)
    spanish = embed_text("El río corre hacia el mar, lleva mi corazón a casa", config)
    other = embed_text("Guten Morgen kleine Stadt, der Bäcker singt am Morgen", config)
    assert english is not None and spanish is not None and other is not None
    assert english.shape == (384,) and english.dtype == np.float32
    assert abs(np.linalg.norm(english) - 1) < 1e-4
    assert english @ spanish > english @ other


def test_long_text_is_the_mean_of_normalised_pieces() -> None:
    """Three pieces on three subjects, each embedded alone by the real encoder: the target is
    the mean of their unit vectors, not the first piece's (nor a re-normalised mean)."""
    config = TextEmbedConfig(piece_chars=40)
    text = (
        "the river runs down to the sea tonight "
        "die Katze schläft auf dem warmen Dach "
        "numbers and taxes fill the office files"
    )
    pieces = split_pieces(text, config.piece_chars)
    assert pieces == [
        "the river runs down to the sea tonight",
        "die Katze schläft auf dem warmen Dach",
        "numbers and taxes fill the office files",
    ]
    units = np.stack([_encoder().passage(p) for p in pieces]).astype(np.float64)
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    vector = embed_text(text, config)
    assert vector is not None and vector.shape == (384,) and vector.dtype == np.float32
    np.testing.assert_allclose(vector, units.mean(axis=0), rtol=1e-5, atol=1e-6)
    cosines = units @ vector / np.linalg.norm(vector)
    assert cosines.max() < 0.97  # the mean is none of its pieces (each ~0.93 from it)
    assert np.linalg.norm(vector) < 0.99  # pieces that disagree pull the mean inside the sphere


def test_long_transcript_chunks_fit_the_encoder_on_word_boundaries() -> None:
    encoder = _encoder()
    text = " ".join(f"la riviere numero {i} coule vers la mer" for i in range(60))
    assert encoder.token_count(text) > MAX_TOKENS
    chunks = token_chunks(text)
    assert " ".join(chunks) == text
    assert all(encoder.token_count(c) <= MAX_TOKENS for c in chunks)
    # each chunk is full: one more word would overflow it
    words = text.split()
    taken = 0
    for chunk in chunks[:-1]:
        taken += len(chunk.split())
        assert encoder.token_count(f"{chunk} {words[taken]}") > MAX_TOKENS
    assert token_chunks("short text fits") == ["short text fits"]


def test_document_is_the_token_weighted_mean_of_its_chunk_embeddings() -> None:
    config = TextEmbedConfig()
    text = " ".join(f"the river {i} runs down to the sea tonight" for i in range(60))
    chunks = token_chunks(text)
    assert len(chunks) == 2
    vectors = np.stack([_encoder().passage(c) for c in chunks]).astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    tokens = [_encoder().token_count(c) for c in chunks]
    mean = (tokens[0] * vectors[0] + tokens[1] * vectors[1]) / sum(tokens)
    document = embed_document(text, config)
    assert document is not None and document.shape == (384,) and document.dtype == np.float32
    np.testing.assert_allclose(document, mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-6)
    assert embed_document("only three words", config) is None


def test_a_short_document_is_one_passage() -> None:
    text = "El río corre hacia el mar, lleva mi corazón a casa"
    document = embed_document(text, TextEmbedConfig())
    assert document is not None
    np.testing.assert_allclose(document, _encoder().passage(text), rtol=1e-5, atol=1e-6)


UNSPACED_LYRICS = [
    "แม่น้ำไหลไปสู่ทะเล พาหัวใจฉันกลับบ้าน",
    "河流奔向大海 带我的心回家",
    "川は海へ流れていく 私の心を家へ運んで",
]


@pytest.mark.parametrize("text", UNSPACED_LYRICS)
def test_a_sung_window_in_an_unspaced_script_gets_a_target(text: str) -> None:
    config = TextEmbedConfig()
    for embed in (embed_text, embed_document):
        vector = embed(clean_transcript(text), config)
        assert vector is not None and vector.shape == (384,) and vector.dtype == np.float32
    assert embed_text("河流奔向", config) is None  # two words of two characters


def _no_mark_first(pieces: list[str]) -> bool:
    return not any(unicodedata.category(p[0]).startswith("M") for p in pieces)


@pytest.mark.parametrize("text", UNSPACED_LYRICS)
def test_unspaced_pieces_are_cut_between_characters(text: str) -> None:
    pieces = split_pieces(text, 5)
    assert len(pieces) > 2 and all(len(p) <= 5 for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
    assert _no_mark_first(pieces)


def test_a_long_unspaced_transcript_is_chunked_between_characters() -> None:
    encoder = _encoder()
    text = "".join(f"แม่น้ำสายที่{i}ไหลไปสู่ทะเลพาหัวใจฉันกลับบ้าน" for i in range(80))
    assert encoder.token_count(text) > MAX_TOKENS
    chunks = token_chunks(text)
    assert len(chunks) > 1 and "".join(chunks) == text
    assert all(encoder.token_count(c) <= MAX_TOKENS for c in chunks)
    assert _no_mark_first(chunks)

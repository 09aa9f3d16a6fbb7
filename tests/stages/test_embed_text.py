import numpy as np

from pipeline.config import TextEmbedConfig
from pipeline.stages.embed_text import clean_transcript, embed_text, split_pieces


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
    config = TextEmbedConfig(piece_chars=40)
    text = "the river runs down to the sea and carry my heart back home to me tonight"
    vector = embed_text(text, config)
    assert vector is not None
    assert np.linalg.norm(vector) <= 1.0 + 1e-5

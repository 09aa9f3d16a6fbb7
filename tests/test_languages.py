"""The language codes the catalog and ``--language`` accept are Whisper's own."""

from faster_whisper.tokenizer import _LANGUAGE_CODES

from pipeline.languages import WHISPER_LANGUAGES, unknown_language


def test_the_codes_are_faster_whispers() -> None:
    assert frozenset(_LANGUAGE_CODES) == WHISPER_LANGUAGES


def test_an_unknown_code_says_why_and_what_to_give() -> None:
    assert unknown_language("haw") is None and unknown_language("yue") is None
    assert "not a Whisper language code" in (unknown_language("english") or "")
    assert "lower case: en" in (unknown_language("EN") or "")

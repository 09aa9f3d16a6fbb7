"""The language codes the catalog and ``--language`` accept are Whisper's own."""

import dataclasses

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES

from pipeline.config import ConfigError, ExtractConfig, WhisperConfig
from pipeline.io.catalog import CatalogError
from pipeline.languages import WHISPER_LANGUAGES, unknown_language
from pipeline.records import CatalogEntry
from pipeline.runner import check_languages


def test_the_codes_are_faster_whispers() -> None:
    assert frozenset(_LANGUAGE_CODES) == WHISPER_LANGUAGES


def test_an_unknown_code_says_why_and_what_to_give() -> None:
    assert unknown_language("haw") is None and unknown_language("yue") is None
    assert "not a Whisper language code" in (unknown_language("english") or "")
    assert "lower case: en" in (unknown_language("EN") or "")


def test_a_language_the_model_lacks_stops_the_run_naming_the_row() -> None:
    config = ExtractConfig(input="catalog.csv")
    check_languages([CatalogEntry("t1", "a.wav", 2, language="haw")], config)
    lacking = [
        CatalogEntry("t1", "a.wav", 2, language="haw"),
        CatalogEntry("t2", "b.wav", 3, language="yue"),
    ]
    with pytest.raises(
        CatalogError, match=r"^catalog\.csv:3: 't2': this Whisper model has no language 'yue'"
    ):
        check_languages(lacking, config)  # the bundled base predates Cantonese
    forced = dataclasses.replace(config, whisper=WhisperConfig(language="yue"))
    with pytest.raises(ConfigError, match=r"^--language yue: this Whisper model"):
        check_languages([], forced)
    check_languages(lacking, dataclasses.replace(config, whisper=WhisperConfig(language="en")))

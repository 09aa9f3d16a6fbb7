"""The continuation of a window, loop cutting and the track's language, on hand-built decoder
outputs: deterministic, no model run (the real tokenizer of the bundled Whisper base)."""

from __future__ import annotations

import dataclasses

import pytest
import tokenizers
from faster_whisper.tokenizer import Tokenizer

from pipeline.config import WhisperConfig
from pipeline.models.whisper_runtime import resolve_model_dir
from pipeline.records import Transcript
from pipeline.stages.transcribe import (
    _choose,
    cut_loop,
    new_words,
    replaces,
    split_timestamps,
    track_languages,
    words_before,
)
from tests.stages.decoding import continue_window, seek_window

CONFIG = WhisperConfig()


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    path = resolve_model_dir(CONFIG) / "tokenizer.json"
    return Tokenizer(tokenizers.Tokenizer.from_file(str(path)), True, "transcribe", "fr")


def stamp(tokenizer: Tokenizer, seconds: float) -> int:
    return tokenizer.timestamp_begin + round(seconds / 0.02)


def line(tokenizer: Tokenizer, start_s: float, text: str, end_s: float) -> list[int]:
    """One timestamped segment as Whisper writes it: <|start|> text <|end|>."""
    return [stamp(tokenizer, start_s), *tokenizer.encode(" " + text), stamp(tokenizer, end_s)]


def test_a_trailing_loop_is_cut_after_its_second_occurrence() -> None:
    assert cut_loop([1, 2, 3, 4, 4, 4, 4, 4]) == ([1, 2, 3, 4, 4], True)
    assert cut_loop([9, 5, 6, 5, 6, 5, 6, 5, 6]) == ([9, 5, 6, 5, 6], True)
    assert cut_loop([1, 2, 1, 2, 1, 2, 3]) == ([1, 2, 1, 2, 1, 2, 3], False)  # three times
    assert cut_loop([7, 7, 7]) == ([7, 7, 7], False)  # three times is a lyric ("rage rage rage")
    # A repetition the decoder leaves for other words is sung ("oh oh oh oh", then the verse).
    sung = [8, 5, 6, 5, 6, 5, 6, 5, 6, 9, 10]
    assert cut_loop(sung) == (sung, False)


def test_a_chorus_sung_again_after_other_lines_is_no_loop(tokenizer: Tokenizer) -> None:
    chorus = tokenizer.encode(" un coup c'est la guerre, un coup c'est la fête.")
    verse = tokenizer.encode(" J'sais plus trop où donner de la tête.")
    tokens = [*chorus, *verse, *chorus, *verse, *chorus]
    assert cut_loop(tokens) == (tokens, False)


def test_a_phrase_repeated_in_a_decoding_is_cut_to_two(tokenizer: Tokenizer) -> None:
    """The kept-back rap song's window: "des primes" written 20 times."""
    text = tokenizer.encode(" On veut des primes") + tokenizer.encode(" des primes") * 19
    kept, looped = cut_loop(text)
    assert looped and tokenizer.decode(kept).split() == "On veut des primes des primes".split()


def test_split_timestamps_keeps_text_and_the_last_timestamp(tokenizer: Tokenizer) -> None:
    tokens = line(tokenizer, 0.0, "bonjour", 2.0) + line(tokenizer, 2.0, "salut", 4.5)
    text, last = split_timestamps(tokens, tokenizer.timestamp_begin)
    assert tokenizer.decode(text).strip() == "bonjour salut"
    assert last == stamp(tokenizer, 4.5)
    assert split_timestamps([], tokenizer.timestamp_begin) == ([], None)


def test_a_seek_keeps_the_words_that_start_before_the_window_ends(tokenizer: Tokenizer) -> None:
    tokens = [
        *line(tokenizer, 0.0, "dans la rue", 8.0),
        *line(tokenizer, 8.0, "le soir", 20.5),
        *line(tokenizer, 21.0, "la nuit", 25.0),  # starts past 21 s: the next window's words
    ]
    words, last = words_before(tokens, tokenizer, limit_s=21.0)
    assert tokenizer.decode(words).split() == "dans la rue le soir".split()
    assert last == 20.5
    assert words_before(tokens, tokenizer, 30.0)[1] == 25.0
    # One long segment across the limit keeps the share of its words before it.
    long = line(tokenizer, 10.0, "un deux trois quatre cinq six sept huit", 26.0)
    words, last = words_before(long, tokenizer, limit_s=14.0)
    assert tokenizer.decode(words).split() == "un deux".split() and last == 14.0
    untimed = tokenizer.encode(" sans repère du tout")  # never closed: ends with the audio
    assert tokenizer.decode(words_before(untimed, tokenizer, 15.0)[0]).split() == ["sans", "repère"]
    assert words_before(untimed, tokenizer, 30.0) == (untimed, None)


def test_a_window_seeks_on_fresh_audio_from_its_last_timestamp(tokenizer: Tokenizer) -> None:
    """Each seek decodes 30 s of audio from the last timestamp (offsets into the window), its
    timestamps from 0 again; the words past the window's end are left to the next window."""
    first = line(tokenizer, 0.0, "si t'es là c'est pour le pire", 9.0)
    replies = {
        9.0: [
            *line(tokenizer, 0.0, "un coup c'est la guerre", 6.0),
            *line(tokenizer, 6.0, "un coup c'est la fête", 12.0),
            *line(tokenizer, 22.0, "la semaine d'après", 26.0),  # at 31 s: the next window's
        ],
        21.0: line(tokenizer, 0.0, "j'sais plus où donner de la tête", 7.0),
    }
    asked: list[tuple[float, list[int]]] = []

    def decode(offset_s: float, prompt: list[int]) -> tuple[list[int], float]:
        asked.append((offset_s, prompt))
        return replies[offset_s], -0.5

    parts, sum_logprob = seek_window((first, -0.25), decode, tokenizer, CONFIG)
    assert [offset for offset, _ in parts] == [0.0, 9.0, 21.0]
    said = [tokenizer.decode(list(tokens)).strip() for _, tokens in parts]
    assert said == [
        "si t'es là c'est pour le pire",
        "un coup c'est la guerre un coup c'est la fête",
        "j'sais plus où donner de la tête",
    ]
    # Conditioned on the text so far; timestamps on, from the seek's own start.
    _, prompt = asked[0]
    assert prompt[0] == tokenizer.sot_prev and prompt[-len(tokenizer.sot_sequence) :] == list(
        tokenizer.sot_sequence
    )
    assert tokenizer.decode(prompt[1 : -len(tokenizer.sot_sequence)]).strip() == said[0]
    assert len(asked) == 2  # 28 s reached: within the margin of the window's end
    assert sum_logprob < 0


def test_a_window_that_reaches_its_end_never_seeks(tokenizer: Tokenizer) -> None:
    def decode(offset_s: float, prompt: list[int]) -> tuple[list[int], float]:
        raise AssertionError("no seek expected")

    near_end = line(tokenizer, 0.0, "jusqu'au bout", 28.0)
    parts, _ = seek_window((near_end, -0.3), decode, tokenizer, CONFIG)
    assert [offset for offset, _ in parts] == [0.0]


def test_new_words_drops_the_opening_a_continuation_repeats() -> None:
    previous = "Un coup c'est la guerre, un coup c'est la fête"
    assert new_words(previous, "un coup, c'est la FÊTE! J'sais plus trop") == "J'sais plus trop"
    assert new_words(previous, "J'sais plus trop où donner") == "J'sais plus trop où donner"
    assert new_words(previous, "Un coup c'est la guerre") == ""


def test_track_language_is_a_vote_and_a_sure_window_keeps_its_own() -> None:
    detected = [
        [("fr", 0.6), ("es", 0.3)],
        [("cy", 0.5), ("fr", 0.4)],  # an intro heard as Welsh: decoded in French
        [("en", 0.95), ("fr", 0.01)],  # a verse sung in English
        [("fr", 0.9)],
    ]
    assert track_languages(detected, keep_own=0.8) == [
        ("fr", 0.6),
        ("fr", 0.4),
        ("en", 0.95),
        ("fr", 0.9),
    ]
    assert [language for language, _ in track_languages(detected, keep_own=1.1)] == ["fr"] * 4
    assert track_languages([], keep_own=0.8) == []


def test_unsure_windows_do_not_outvote_a_sure_one() -> None:
    """An English song under a band: one window Whisper is sure of, five hallucinated in Thai
    with a detection it is not sure of. Summed, the five would win."""
    sure = [("en", 0.9), ("th", 0.02)]
    unsure = [("th", 0.25), ("en", 0.05), ("ja", 0.05)]
    detected = [sure, *[unsure] * 5]
    assert sum(dict(w).get("th", 0.0) for w in detected) > sum(dict(w)["en"] for w in detected)
    assert track_languages(detected, keep_own=0.8) == [("en", 0.9), *[("en", 0.05)] * 5]
    # Only the voters count: without the sure window, Thai is all the evidence there is (the
    # sure window keeps its own language).
    voters = [False, *[True] * 5]
    chosen = [language for language, _ in track_languages(detected, 0.8, voters)]
    assert chosen == ["en", *["th"] * 5]


def test_a_language_no_window_puts_first_cannot_win() -> None:
    """Spanish is every window's second guess: summed, and even squared, it would win, but no
    window is surer of it than of another language."""
    detected = [
        [("fr", 0.35), ("es", 0.3), ("it", 0.1)],
        [("pt", 0.35), ("es", 0.3), ("it", 0.1)],
    ]
    assert [language for language, _ in track_languages(detected, keep_own=0.8)] == ["fr", "fr"]
    detected.append([("pt", 0.4), ("fr", 0.1)])  # a third window makes Portuguese the surer
    assert [language for language, _ in track_languages(detected, keep_own=0.8)] == ["pt"] * 3


def test_a_window_that_stops_early_is_continued_from_its_last_timestamp(
    tokenizer: Tokenizer,
) -> None:
    first = line(tokenizer, 0.0, "si t'es là", 4.0) + line(
        tokenizer, 4.0, "c'est pour le pire", 9.0
    )
    replies = [
        # Starts by repeating a line it wrote, then goes on.
        line(tokenizer, 9.0, "c'est pour le pire un coup c'est la guerre", 15.0),
        line(tokenizer, 15.0, "un coup c'est la guerre", 19.0),  # nothing new: stop
    ]
    prompts: list[list[int]] = []

    def decode(prompt: list[int]) -> tuple[list[int], float]:
        prompts.append(prompt)
        return [prompt[-1], *replies[len(prompts) - 1]], -0.5  # the prefix, then what follows

    tokens, sum_logprob = continue_window((first, -0.25), decode, tokenizer, CONFIG)
    assert tokenizer.decode(list(tokens)).split() == (
        "si t'es là c'est pour le pire un coup c'est la guerre".split()
    )
    assert len(prompts) == 2
    # Conditioned on the window's text so far, then decoding resumes at its last timestamp.
    assert prompts[0][0] == tokenizer.sot_prev
    assert prompts[0][-4:] == [*tokenizer.sot_sequence, stamp(tokenizer, 9.0)]
    assert tokenizer.decode(prompts[0][1:-4]).strip() == "si t'es là c'est pour le pire"
    assert prompts[1][-1] == stamp(tokenizer, 15.0)
    assert sum_logprob < 0


def test_a_window_is_not_continued_near_its_end_after_a_loop_or_without_rounds(
    tokenizer: Tokenizer,
) -> None:
    def decode(prompt: list[int]) -> tuple[list[int], float]:
        raise AssertionError("no continuation expected")

    near_end = line(tokenizer, 0.0, "jusqu'au bout", 28.0)
    tokens, _ = continue_window((near_end, -0.3), decode, tokenizer, CONFIG)
    assert tokenizer.decode(list(tokens)).strip() == "jusqu'au bout"

    ah = tokenizer.encode(" ah,")
    looped = [stamp(tokenizer, 0.0), *tokenizer.encode(" oh"), *(ah * 30)]
    tokens, _ = continue_window((looped, -0.3), decode, tokenizer, CONFIG)
    assert tokenizer.decode(list(tokens)).strip() == "oh ah, ah,"

    early = line(tokenizer, 0.0, "trop tôt", 3.0)
    no_rounds = dataclasses.replace(CONFIG, continue_rounds=0)
    tokens, _ = continue_window((early, -0.3), decode, tokenizer, no_rounds)
    assert tokenizer.decode(list(tokens)).strip() == "trop tôt"


def test_the_fallback_skips_windows_judged_sung_unless_they_repeat_themselves() -> None:
    from pipeline.config import ExtractConfig, SingingConfig
    from pipeline.track import _settled

    def greedy(
        text: str, compression_ratio: float, avg_logprob: float = -0.5, no_speech: float = 0.1
    ) -> Transcript:
        return Transcript((), (), text, "fr", 1.0, avg_logprob, no_speech, compression_ratio, 0.0)

    verse = "si t'es là c'est pour le meilleur et pour le pire je te retiendrais pas"
    windows = [
        greedy(verse, 1.4),  # sung: its text stands
        greedy(verse, 3.5),  # a loop: resampled
        greedy("merci", 1.0),  # unsung: a sample may find the verse
        greedy(verse, 1.4, avg_logprob=-4.0),  # too unsure to be judged sung: resampled
        greedy("merci", 1.0, no_speech=0.97),  # no text makes it sung: not resampled
    ]
    config = ExtractConfig()
    assert _settled(windows, config) == [True, False, False, False, True]
    everything = dataclasses.replace(config, whisper=WhisperConfig(resample_sung=True))
    assert _settled(windows, everything) == [False] * 5
    no_judge = dataclasses.replace(config, singing=SingingConfig(judge=False))
    assert _settled(windows, no_judge) == [False] * 5


def test_the_track_language_is_voted_by_the_windows_sung_in_their_own() -> None:
    from pipeline.config import ExtractConfig, SingingConfig
    from pipeline.records import Transcript
    from pipeline.track import _track_language_redo

    def greedy(text: str, language: str) -> Transcript:
        return Transcript((), (), text, language, 0.3, -0.5, 0.3, 1.4, 0.0)

    verse = "il mio cuore brucia sulla strada d'inverno nostra madre canta"
    # An Italian song whose verses Whisper spreads over Italian and Latin, and whose 8 s outro
    # it is sure is English: summed over every window, English would win.
    detected = [
        [("it", 0.28), ("la", 0.17), ("en", 0.1)],
        [("la", 0.3), ("it", 0.25), ("en", 0.1)],
        [("en", 0.75), ("it", 0.05)],
        [("en", 0.9)],  # a second track: an instrumental, nothing sung
    ]
    windows = [greedy(verse, "it"), greedy(verse, "la"), greedy("you", "en"), greedy("you", "en")]
    assert track_languages(detected[:3], keep_own=0.8)[0][0] == "en"  # what every window says
    config = ExtractConfig()
    assert _track_language_redo([3, 1], detected, windows, config, [None, None]) == [
        (1, ("it", 0.25)),
        (2, ("it", 0.05)),
    ]
    # Without the judgement every window is sung, and votes.
    no_judge = dataclasses.replace(config, singing=SingingConfig(judge=False))
    assert _track_language_redo([3, 1], detected, windows, no_judge, [None, None]) == [
        (0, ("en", 0.1)),
        (1, ("en", 0.1)),
    ]


def test_a_sample_ended_in_its_loop_never_passes_as_silence() -> None:
    """Whisper calls unlikely text under a high no-speech probability silence, and silence
    passes; a loop cut short is unlikely only because it was cut, so it must not pass."""
    config = WhisperConfig()

    def candidate(text: str, temperature: float, logprob: float, ratio: float) -> Transcript:
        return Transcript((), (), text, "la", 0.5, logprob, 0.9, ratio, temperature)

    greedy = candidate("... " * 40, 0.0, -0.3, 26.3)
    cut_loop_sample = candidate("Mithirek, ennag, ennag, ennag, ennag", 0.6, -1.1, 3.03)
    later = candidate("Mithirek, entrebate", 0.8, -4.1, 0.84)
    tried = [greedy, cut_loop_sample, later]
    assert _choose(tried, config) is cut_loop_sample  # silence, by Whisper's rule
    assert _choose(tried, config, looped={0.6}) is later


def test_a_denser_text_replaces_only_with_more_lyric_words_and_no_loop() -> None:
    """The timestamped text replaces the first where it holds at least as many of the words
    the singing judgement counts: a stock hallucination holds none, a loop never replaces."""
    config = WhisperConfig()

    def text(words: str, ratio: float = 1.2) -> Transcript:
        return Transcript((), (), words, "fr", 0.9, -0.5, 0.1, ratio, 0.0)

    first = text("Même si mon réveil ne sonne pas")
    assert replaces(first, text("Même si mon réveil ne sonne pas et qu'on m'attend"), config)
    assert not replaces(first, text("Même si mon réveil"), config)
    outro = text("Moudez, c'est parti !")
    assert not replaces(outro, text("Sous-titres réalisés par le Sous-titres par le Sous-"), config)
    assert not replaces(first, text("Même si mon réveil ne sonne pas " * 6, ratio=4.1), config)

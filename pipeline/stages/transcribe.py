"""Transcribe segments from their encoder states with CTranslate2's ``generate``.

First every window is decoded greedily without timestamps, in its track's language (given,
or a vote over the track's windows), and the windows whose text fails Whisper's checks fall
back to higher temperatures, but for those the caller settles (already judged sung, in the
extraction): the text the singing judgement reads. Then the windows judged sung are decoded
again with timestamps (``densify``): decoding without them often ends a dense window after its
first lines (a rap verse), so where the text stops well before the window's end it is decoded
on from the last timestamp, conditioned on the window's text so far: by default the same
encoder states (``continuation``), with ``dense_seek`` the 30 s of audio from there, encoded
afresh (``seek_rounds``; a seek's words that start after the window's end are dropped). What a
round repeats of the text so far is dropped. In every decoding a loop of one phrase at its end
is cut after its second occurrence (``cut_loop``). The dense decodings search a beam
(``dense_beam_size``); the judgement's stays greedy. The text tokens are kept, with the encoder
output each part was decoded from (``DenseText``); the timestamps only steer the decoding.

The fallback samples in batched PyTorch decoder passes: CTranslate2's sampling cannot be
seeded reproducibly, so each row draws from a seeded generator, and identical inputs give
identical outputs on any worker. No window is conditioned on another: any one can be
recomputed alone.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Collection, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import ctranslate2
import numpy as np
import torch
from faster_whisper.tokenizer import Tokenizer

from pipeline.config import WhisperConfig
from pipeline.models.whisper_decoder import SelfAttentionCache
from pipeline.models.whisper_runtime import WhisperRuntime
from pipeline.records import AudioSegment, Transcript
from pipeline.stages.encode import encode, log_mel
from pipeline.stages.singing import lyric_words

MAX_LENGTH = 448  # Whisper's decoder positions
SECONDS_PER_TIMESTAMP = 0.02
WINDOW_S = 30.0
LOOP_MAX_PERIOD = 24  # tokens: the longest phrase a loop repeats
LOOP_MIN_REPEATS = 4  # a phrase said this many times in a row at the end is a loop
SEEK_MAX_INITIAL_S = 1.0  # a seek's first timestamp: faster-whisper's max_initial_timestamp


def compression_ratio(text: str) -> float:
    """Whisper's repetition score: bytes of text over bytes once zlib-compressed."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


Languages = list[tuple[str, float]]  # per segment: (language, probability)


def detect_languages(
    encoder_states: np.ndarray, runtime: WhisperRuntime, config: WhisperConfig
) -> list[list[tuple[str, float]]]:
    """Per segment of a (B, L, d) batch, its likeliest languages with their probabilities;
    detected even where a language is given (``decoding_language``), to be recorded."""
    if not runtime.model.is_multilingual:
        return [[("en", 1.0)]] * len(encoder_states)
    output = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoder_states))
    return [
        [(code[2:-2], float(p)) for code, p in r] for r in runtime.model.detect_language(output)
    ]


def decoding_language(
    detected: Sequence[tuple[str, float]], given: str | None
) -> tuple[str, float]:
    """The language to decode a segment in, with the probability detection gave it: the
    ``given`` one (the catalog's, ``--language``), else the likeliest detected."""
    if given is None:
        return detected[0]
    return given, dict(detected).get(given, 0.0)


def record_detected(
    transcripts: Sequence[Transcript], detected: Sequence[Sequence[tuple[str, float]]]
) -> list[Transcript]:
    """``transcripts`` with each segment's own likeliest language, whatever decoded it."""
    return [
        dataclasses.replace(t, detected_language=d[0][0], detected_language_probability=d[0][1])
        for t, d in zip(transcripts, detected, strict=True)
    ]


def track_languages(
    detected: Sequence[Sequence[tuple[str, float]]],
    keep_own: float,
    voters: Sequence[bool] | None = None,
) -> Languages:
    """One language for a track's segments, from the evidence of the ``voters`` (default: all
    of them). Each voter's probability of a language counts weighted by itself (the sum of
    squares): a window sure of its language counts far more than several unsure ones. An
    English song's one clear window (0.9) outweighs five hallucinated Thai windows (0.25 each),
    which summed would win and leave the track without text. Only a language some voter puts
    first can win: one that is every window's second guess is no window's evidence. A segment
    sure of another language (probability >= ``keep_own``) keeps its own: a verse in a second
    language. Whisper's per-window guess flips on intros and shouts (a French song's window
    heard as Welsh), and a window decoded in the wrong language loses its words. The voters
    are the sung windows: an outro's few seconds are often surer of English than a verse is
    of Italian, and outvoted the verses."""
    votes: dict[str, float] = defaultdict(float)
    firsts: set[str] = set()  # the languages some voter puts first
    for candidates, votes_here in zip(detected, voters or [True] * len(detected), strict=True):
        if not votes_here:
            continue
        firsts.add(candidates[0][0])
        for language, probability in candidates:
            votes[language] += probability * probability
    if not votes:
        return []
    winner = max(sorted(firsts), key=lambda language: votes[language])
    chosen = []
    for candidates in detected:
        own, probability = candidates[0]
        if own != winner and probability >= keep_own:
            chosen.append((own, probability))
        else:
            chosen.append((winner, dict(candidates).get(winner, 0.0)))
    return chosen


def decoding_prompt(
    tokenizer: Tokenizer,
    config: WhisperConfig,
    *,
    previous: Sequence[int] | None = None,
    timestamps: bool = False,
    start: int | None = None,
) -> list[int]:
    """Every decoding's prompt, built here only (faster-whisper's ``get_prompt``): the text
    before it after ``<|startofprev|>`` (``previous``: a seek's or continuation's context; by
    default the initial prompt), at most half the decoder's positions; the start sequence; then
    no-timestamps, or with ``timestamps`` the timestamp token ``start`` to continue from."""
    if previous is None and config.initial_prompt:
        previous = tokenizer.encode(" " + config.initial_prompt.strip())
    before = [] if previous is None else [tokenizer.sot_prev, *previous][: MAX_LENGTH // 2]
    if not timestamps:
        return [*before, *tokenizer.sot_sequence, tokenizer.no_timestamps]
    return [*before, *tokenizer.sot_sequence, *([] if start is None else [start])]


def prompt_tokens(tokenizer: Tokenizer, config: WhisperConfig) -> list[int]:
    """The prompt the text tokens follow, and the decoder states are computed after: without
    timestamps, whatever mode decoded the text."""
    return decoding_prompt(tokenizer, config)


def cut_loop(tokens: Sequence[int]) -> tuple[list[int], bool]:
    """``tokens`` with a trailing loop (one phrase of up to ``LOOP_MAX_PERIOD`` tokens said at
    least ``LOOP_MIN_REPEATS`` times in a row, to the end) cut after its second occurrence;
    whether one was. A decoder caught in a loop repeats until its length limit: the rest of it
    is no lyric. A repetition the decoder leaves ("oh oh oh oh" sung, then the verse) is a
    lyric, as is a chorus sung again after other lines."""
    n = len(tokens)
    for period in range(1, LOOP_MAX_PERIOD + 1):
        repeats = 1
        while n - (repeats + 1) * period >= 0 and (
            tokens[n - (repeats + 1) * period : n - repeats * period]
            == tokens[n - repeats * period : n - (repeats - 1) * period]
        ):
            repeats += 1
        if repeats >= LOOP_MIN_REPEATS:
            return list(tokens[: n - (repeats - 2) * period]), True
    return list(tokens), False


def split_timestamps(tokens: Sequence[int], timestamp_begin: int) -> tuple[list[int], int | None]:
    """(text tokens, the last timestamp token or None) of a timestamped decoding."""
    text = [t for t in tokens if t < timestamp_begin]
    stamps = [t for t in tokens if t >= timestamp_begin]
    return text, (stamps[-1] if stamps else None)


def new_words(previous: str, continuation: str) -> str:
    """``continuation`` without its longest opening run of words that ``previous`` already
    holds (compared case- and punctuation-blind): decoding the same window again, Whisper often
    starts by repeating a line it wrote, and a line written twice is an insertion."""
    said = _plain_words(previous)
    words = continuation.split()
    repeated = 0  # a run held in ``said`` holds its own openings: the first miss ends the search
    for count in range(1, len(words) + 1):
        opening = _plain_words(" ".join(words[:count]))
        if not opening:
            continue
        if not any(said[i : i + len(opening)] == opening for i in range(len(said))):
            break
        repeated = count
    return " ".join(words[repeated:])


def _plain_words(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c.isspace() else " " for c in text.lower()).split()


def greedy_batch(
    encoder_states: np.ndarray,
    runtime: WhisperRuntime,
    config: WhisperConfig,
    languages: Languages | None = None,
) -> list[Transcript]:
    """The greedy (temperature 0) transcript, without timestamps, of each of a batch of
    (B, L, d) encoder states, in ``languages`` (default: ``whisper.language``, else each
    segment's own, the detection recorded): what the singing judgement reads. One CTranslate2
    call; its int8 products sum integers, so a segment's result does not depend on the others."""
    if encoder_states.ndim != 3:
        raise ValueError(f"encoder_states must be (B, L, d), got shape {encoder_states.shape}")
    detected = None
    if languages is None:
        detected = detect_languages(encoder_states, runtime, config)
        languages = [decoding_language(d, config.language) for d in detected]
    prompts = [prompt_tokens(_tokenizer(runtime, language), config) for language, _ in languages]
    # Same length for every language (start, language, task, no-timestamps): no padding.
    results = _generate(
        encoder_states,
        prompts,
        runtime,
        config,
        beam_size=config.beam_size,
        return_no_speech_prob=True,
    )
    greedy = [
        _candidate(
            Transcript(
                prompt=tuple(prompt),
                tokens=(),
                text="",
                language=language,
                language_probability=probability,
                avg_logprob=0.0,
                no_speech_prob=float(result.no_speech_prob),
                compression_ratio=0.0,
                temperature=0.0,
            ),
            *_greedy_tokens(result),
            0.0,
            runtime,
        )
        for prompt, (language, probability), result in zip(prompts, languages, results, strict=True)
    ]
    return greedy if detected is None else record_detected(greedy, detected)


@dataclass(frozen=True)
class TextPart:
    """Text tokens of a window and the encoder output they were decoded from: the window's own
    (``offset_s`` 0), or a seek's (30 s of audio from ``offset_s`` into the window). The
    decoder states of the tokens are computed against the same encoder output."""

    offset_s: float
    encoder_states: np.ndarray  # (L, d) float32
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class DenseText:
    """A sung window's transcript and the parts its tokens were decoded in, in order."""

    transcript: Transcript
    parts: tuple[TextPart, ...]


def whole(encoder_states: np.ndarray, transcript: Transcript) -> DenseText:
    """A transcript decoded from its window's own encoder states only."""
    return DenseText(transcript, (TextPart(0.0, encoder_states, transcript.tokens),))


def densify(
    encoder_states: Sequence[np.ndarray],  # (L, d) per segment
    transcripts: list[Transcript],
    runtime: WhisperRuntime,
    config: WhisperConfig,
    audio_at: Callable[[int, float], AudioSegment] | None = None,
) -> list[DenseText]:
    """The segments' transcripts decoded again with timestamps; where a text stops early or
    loops, decoded on from its last timestamp: with ``whisper.dense_seek`` on 30 s of fresh
    audio from there (``audio_at(segment, offset_s)``; ``seek_rounds``), else on the same
    encoder states (``continuation``). The denser text replaces a transcript where
    ``replaces`` says so. Decoding without timestamps often ends a dense window after its
    first lines. Run on the sung windows only: on instrumental music timestamped decoding
    writes longer hallucinations, which the singing judgement, tuned on the text without
    timestamps, would take for lyrics."""
    if config.continue_rounds <= 0 or not transcripts:
        return [whole(s, t) for s, t in zip(encoder_states, transcripts, strict=True)]
    dense: list[DenseText] = []
    for first in range(0, len(transcripts), config.batch_size):
        chosen = transcripts[first : first + config.batch_size]
        states = np.stack(encoder_states[first : first + config.batch_size])
        tokenizers = [_tokenizer(runtime, t.language) for t in chosen]
        prompts = [decoding_prompt(t, config, timestamps=True) for t in tokenizers]
        firsts = [
            _decoding(r)
            for r in _generate(states, prompts, runtime, config, beam_size=config.dense_beam_size)
        ]
        if config.dense_seek and audio_at is not None:
            seeks = [
                seek_rounds(decoding, tokenizer, config)
                for decoding, tokenizer in zip(firsts, tokenizers, strict=True)
            ]
            at = functools.partial(_shifted, audio_at, first)
            found_parts = _run_seeks(states, seeks, at, runtime, config)
        else:
            rounds = [
                continuation(decoding, tokenizer, config)
                for decoding, tokenizer in zip(firsts, tokenizers, strict=True)
            ]
            found_parts = [
                ((TextPart(0.0, own, tokens),), score)
                for own, (tokens, score) in zip(
                    states, _run_rounds(states, rounds, runtime, config), strict=True
                )
            ]
        for own, old, (parts, score) in zip(states, chosen, found_parts, strict=True):
            tokens = tuple(t for part in parts for t in part.tokens)
            found = dataclasses.replace(
                _candidate(old, tokens, score, 0.0, runtime, cut=False), timestamped=True
            )
            dense.append(
                DenseText(found, parts) if replaces(old, found, config) else whole(own, old)
            )
    return dense


def _shifted(
    audio_at: Callable[[int, float], AudioSegment], first: int, window: int, offset_s: float
) -> AudioSegment:
    return audio_at(first + window, offset_s)


def replaces(old: Transcript, found: Transcript, config: WhisperConfig) -> bool:
    """Whether a window's denser transcript ``found`` replaces ``old``: it holds at least as
    many lyric words (those the singing judgement counts: a stock hallucination such as
    "Sous-titres réalisés par ...", which timestamped decoding writes on an outro, holds none)
    and does not repeat itself."""
    denser = len(lyric_words(found.text)) >= len(lyric_words(old.text))
    return denser and not too_repetitive(found, config)


Decoding = tuple[list[int], float]  # (tokens, mean log-prob)
Rounds = Generator[list[int], Decoding, tuple[tuple[int, ...], float]]
Ask = TypeVar("Ask")  # what a window's generator waits on: a prompt, or a seek
Done = TypeVar("Done")  # what it returns once it stops


def _generate(
    states: np.ndarray,  # (B, L, d)
    prompts: list[list[int]],  # all of one length
    runtime: WhisperRuntime,
    config: WhisperConfig,
    *,
    beam_size: int,
    **options: Any,
) -> list[ctranslate2.models.WhisperGenerationResult]:
    """One CTranslate2 decoding of a batch: the options every decoding here shares."""
    return runtime.model.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(states)),
        prompts,
        beam_size=beam_size,
        max_length=_max_length(prompts[0], config),
        return_scores=True,
        **runtime.suppression(),
        **options,
    )


def _decoding(result: ctranslate2.models.WhisperGenerationResult) -> Decoding:
    """Tokens and their mean log-probability, as a continuation reads them."""
    return list(result.sequences_ids[0]), float(result.scores[0])


class _Stepped(Generic[Ask, Done]):
    """Every window's generator (``continuation``, ``seek_rounds``) stepped side by side: what
    each waits on (a prompt, or a seek), and what each returned once it stopped."""

    def __init__(self, rounds: Sequence[Generator[Ask, Decoding, Done]]) -> None:
        self.rounds = rounds
        self.waiting: dict[int, Ask] = {}
        self.done: dict[int, Done] = {}
        for window in range(len(rounds)):
            self._step(window, None)

    def _step(self, window: int, reply: Decoding | None) -> None:
        try:
            rounds = self.rounds[window]
            self.waiting[window] = next(rounds) if reply is None else rounds.send(reply)
        except StopIteration as finished:
            self.done[window] = finished.value

    def answer(
        self, windows: list[int], replies: list[ctranslate2.models.WhisperGenerationResult]
    ) -> None:
        for window, reply in zip(windows, replies, strict=True):
            self._step(window, _decoding(reply))

    def results(self) -> list[Done]:
        return [self.done[w] for w in range(len(self.rounds))]


def _run_rounds(
    states: np.ndarray, rounds: list[Rounds], runtime: WhisperRuntime, config: WhisperConfig
) -> list[tuple[tuple[int, ...], float]]:
    """Drive each window's ``continuation``: the prompts of one length (CTranslate2 wants the
    start token at one position) share a decoding, which returns what each gets alone."""
    stepped = _Stepped(rounds)
    waiting = stepped.waiting  # window -> the prompt it waits on
    while waiting:
        length = len(next(iter(waiting.values())))
        windows = [w for w, prompt in waiting.items() if len(prompt) == length]
        replies = _generate(
            states[windows],
            [waiting.pop(w) for w in windows],
            runtime,
            config,
            beam_size=config.dense_beam_size,
            max_initial_timestamp_index=int(WINDOW_S / SECONDS_PER_TIMESTAMP),
        )
        stepped.answer(windows, replies)
    return stepped.results()


def continuation(first: Decoding, tokenizer: Tokenizer, config: WhisperConfig) -> Rounds:
    """Text tokens of a window's timestamped decoding ``first`` and of its continuations, and
    their summed log-probability. A continuation (the prompt yielded, answered with its
    decoding) starts from the last timestamp, conditioned on the last
    ``continue_context_tokens`` of the text so far; it runs while that timestamp is more than
    ``continue_margin_s`` before the window's end and moves on, the decoding did not loop, and
    the last round wrote at least two words the window did not hold."""
    room = MAX_LENGTH - len(prompt_tokens(tokenizer, config))  # the decoder-state pass's
    begin = tokenizer.timestamp_begin
    context = min(config.continue_context_tokens, MAX_LENGTH // 2 - 1)
    text: list[int] = []
    sum_logprob = 0.0
    (generated, score), last = first, begin
    for round_ in range(config.continue_rounds + 1):
        if round_:
            previous = text[-context:]
            generated, score = yield decoding_prompt(
                tokenizer, config, previous=previous, timestamps=True, start=last
            )
        generated, looped = cut_loop(generated)
        words, stamp = split_timestamps(generated, begin)
        if round_:
            kept = new_words(tokenizer.decode(text), tokenizer.decode(words))
            if len(kept.split()) < 2:
                break
            words = tokenizer.encode(" " + kept)
        words = words[: room - len(text)]
        text += words
        sum_logprob += score * len(words)
        if looped or stamp is None or len(text) >= room or stamp <= last:
            break
        last = stamp
        if (stamp - begin) * SECONDS_PER_TIMESTAMP > WINDOW_S - config.continue_margin_s:
            break
    return tuple(text), sum_logprob


Seek = tuple[float, list[int]]  # (offset into the window in seconds, prompt)
SeekRounds = Generator[Seek, Decoding, tuple[list[tuple[float, tuple[int, ...]]], float]]


def words_before(
    tokens: Sequence[int], tokenizer: Tokenizer, limit_s: float
) -> tuple[list[int], float | None]:
    """The text tokens of a timestamped decoding up to ``limit_s``, and the last timestamp
    kept, in seconds (None: none). Every word belongs to one fixed window: a seek's words past
    the window's end are the next window's. Whisper base often writes one segment for 20 s of
    singing, so a segment that runs past the limit keeps the share of its words that its time
    before the limit is (cut at a word's start), and the limit is its last timestamp."""
    words: list[int] = []
    last: float | None = None
    for start, end, text in _segments(tokens, tokenizer.timestamp_begin):
        if start >= limit_s:
            break
        if end is not None and end <= limit_s:
            words += text
            last = end
            continue
        # Past the limit, or never closed (its end: the audio's, 30 s after its start).
        span = (WINDOW_S if end is None else end) - start
        share = min(1.0, (limit_s - start) / span) if span > 0 else 1.0
        starts = [i for i, t in enumerate(text) if i == 0 or _starts_word(tokenizer, t)]
        kept = round(share * len(starts))
        words += text if kept >= len(starts) else text[: starts[kept]]
        if end is not None:
            last = limit_s
        break
    return words, last


def _segments(
    tokens: Sequence[int], timestamp_begin: int
) -> list[tuple[float, float | None, list[int]]]:
    """(start, end or None if never closed, text tokens) of a timestamped decoding."""
    segments: list[tuple[float, float | None, list[int]]] = []
    start, text = 0.0, []
    for token in tokens:
        if token < timestamp_begin:
            text.append(token)
            continue
        at = (token - timestamp_begin) * SECONDS_PER_TIMESTAMP
        if text:  # closes the segment; the next opens here unless it says otherwise
            segments.append((start, at, text))
            text = []
        start = at
    if text:
        segments.append((start, None, text))
    return segments


def _starts_word(tokenizer: Tokenizer, token: int) -> bool:
    return tokenizer.decode([token]).startswith(" ")


def seek_rounds(first: Decoding, tokenizer: Tokenizer, config: WhisperConfig) -> SeekRounds:
    """The parts (offset, text tokens) of a window's timestamped decoding ``first`` and of its
    seeks, and their summed log-probability. A seek (the offset and prompt yielded, answered
    with the decoding of 30 s of audio from that offset) starts at the last timestamp,
    conditioned on the last ``continue_context_tokens`` of the text so far, as faster-whisper's
    loop seeks: fresh audio at the start of a window is what Whisper was trained on, where the
    same window decoded from a late timestamp often stops again. It runs while that timestamp is
    more than ``continue_margin_s`` before the window's end and moves on, and the last round
    wrote at least two words the window did not hold; a loop is cut (``cut_loop``) and sought
    past."""
    room = MAX_LENGTH - len(prompt_tokens(tokenizer, config))  # each part's decoder-state pass
    context = min(config.continue_context_tokens, MAX_LENGTH // 2 - 1)
    text: list[int] = []
    parts: list[tuple[float, tuple[int, ...]]] = []
    sum_logprob = 0.0
    (generated, score), offset = first, 0.0
    for round_ in range(config.continue_rounds + 1):
        if round_:
            prompt = decoding_prompt(tokenizer, config, previous=text[-context:], timestamps=True)
            generated, score = yield offset, prompt
        generated, _ = cut_loop(generated)
        words, end_s = words_before(generated, tokenizer, WINDOW_S - offset)
        if round_:
            kept = new_words(tokenizer.decode(text), tokenizer.decode(words))
            if len(kept.split()) < 2:
                break
            words = tokenizer.encode(" " + kept)
        words = words[:room]
        text += words
        parts.append((offset, tuple(words)))
        sum_logprob += score * len(words)
        if end_s is None or end_s <= 0.0:
            break
        offset = round(offset + end_s, 2)
        if offset > WINDOW_S - config.continue_margin_s:
            break
    return parts, sum_logprob


def _run_seeks(
    states: np.ndarray,  # (B, L, d): the windows' own encoder states
    rounds: list[SeekRounds],
    audio_at: Callable[[int, float], AudioSegment],
    runtime: WhisperRuntime,
    config: WhisperConfig,
) -> list[tuple[tuple[TextPart, ...], float]]:
    """Drive each window's ``seek_rounds``: encode the audio each seek asks for, in batches,
    and decode the seeks whose prompts have one length together."""
    stepped = _Stepped(rounds)
    waiting = stepped.waiting  # window -> the seek it waits on
    encoded: dict[tuple[int, float], np.ndarray] = {(w, 0.0): s for w, s in enumerate(states)}
    while waiting:
        wanted = [(w, offset) for w, (offset, _) in waiting.items() if (w, offset) not in encoded]
        for first in range(0, len(wanted), config.batch_size):
            chunk = wanted[first : first + config.batch_size]
            mels = log_mel([audio_at(w, offset) for w, offset in chunk], runtime)
            encoded.update(zip(chunk, encode(mels, runtime), strict=True))
        length = len(next(iter(waiting.values()))[1])
        windows = [w for w, (_, prompt) in waiting.items() if len(prompt) == length]
        windows = windows[: config.batch_size]
        seeks = [waiting.pop(w) for w in windows]
        replies = _generate(
            np.stack([encoded[w, offset] for w, (offset, _) in zip(windows, seeks, strict=True)]),
            [prompt for _, prompt in seeks],
            runtime,
            config,
            beam_size=config.dense_beam_size,
            max_initial_timestamp_index=int(SEEK_MAX_INITIAL_S / SECONDS_PER_TIMESTAMP),
        )
        stepped.answer(windows, replies)
    return [
        (tuple(TextPart(o, encoded[w, o], tokens) for o, tokens in parts), score)
        for w, (parts, score) in enumerate(stepped.results())
    ]


def fall_back(
    encoder_states: Sequence[np.ndarray],  # (L, d) per segment
    greedy: list[Transcript],
    runtime: WhisperRuntime,
    config: WhisperConfig,
    settled: Sequence[bool] | None = None,
) -> list[Transcript]:
    """Whisper's temperature fallback for the segments whose greedy text fails its checks,
    except those ``settled`` (their greedy text stands: see ``track.py``), sampled in batched
    PyTorch decoder passes. PyTorch's float products round differently with the number of
    rows, so the caller decides what shares a pass: the extraction passes one track at a time,
    and a track's scores do not depend on the tracks beside it."""
    sampled = [t for t in config.temperatures if t != 0.0]
    if 0.0 in config.temperatures:
        settled = settled or [False] * len(greedy)
        pending = [i for i, c in enumerate(greedy) if _needs_fallback(c, config) and not settled[i]]
    else:
        pending = list(range(len(greedy)))
    # Every fallback temperature of every failing segment at once: most fallbacks on sung or
    # instrumental audio fail at every temperature, and one decoder step costs about the same
    # for a few rows as for one (it streams the same weights). Once a temperature passes, the
    # segment's higher ones are never chosen: they stop, and are not started.
    queue = [(i, temperature) for i in pending for temperature in sampled]
    samples: dict[tuple[int, float], Transcript] = {}
    passed: dict[int, float] = {}  # segment -> its lowest sampled temperature that passed
    # Samples ended in their loop: they fail, whatever Whisper's silence rule would say of a text
    # cut short (its log-probability is lower than the whole loop's would be).
    looped: set[tuple[int, float]] = set()

    while queue := [(i, t) for i, t in queue if t < passed.get(i, math.inf)]:
        chunk, queue = queue[: config.batch_size], queue[config.batch_size :]
        segments = sorted({i for i, _ in chunk})

        def finished(row: int, tokens: tuple[int, ...], sum_logprob: float) -> bool:
            i, temperature = chunk[row]  # noqa: B023 (called within this iteration)
            found = _candidate(greedy[i], tokens, sum_logprob, temperature, runtime)
            samples[i, temperature] = found
            if (i, temperature) in looped or _needs_fallback(found, config):
                return False
            passed[i] = min(passed.get(i, math.inf), temperature)
            return True

        def stuck(row: int, tokens: tuple[int, ...]) -> bool:
            """Caught in a loop that already fails the compression check: the rest of it
            would only repeat (a loop runs to the length limit, most of a fallback's time)."""
            if not cut_loop(tokens)[1]:
                return False
            i, temperature = chunk[row]  # noqa: B023 (called within this iteration)
            uncut = _candidate(greedy[i], tokens, 0.0, temperature, runtime, cut=False)
            if not too_repetitive(uncut, config):
                return False
            looped.add((i, temperature))
            return True

        _sample(
            np.stack([encoder_states[i] for i in segments]),
            [segments.index(i) for i, _ in chunk],
            [list(greedy[i].prompt) for i, _ in chunk],
            [temperature for _, temperature in chunk],
            _max_length(greedy[0].prompt, config),
            runtime,
            config.seed,
            finished,
            stuck,
        )

    def in_order(i: int) -> list[Transcript]:
        """The segment's candidates by temperature: greedy, then its samples if it failed."""
        return [
            greedy[i] if t == 0.0 else samples[i, t]
            for t in config.temperatures
            if t == 0.0 or (i, t) in samples
        ]

    return [
        _choose(in_order(i), config, {t for j, t in looped if j == i}) for i in range(len(greedy))
    ]


def _tokenizer(runtime: WhisperRuntime, language: str) -> Tokenizer:
    return Tokenizer(runtime.tokenizer, runtime.model.is_multilingual, "transcribe", language)


def _max_length(prompt: Sequence[int], config: WhisperConfig) -> int:
    return min(MAX_LENGTH, len(prompt) + config.max_new_tokens)


def _candidate(
    decoding: Transcript,
    tokens: tuple[int, ...],
    sum_logprob: float,
    temperature: float,
    runtime: WhisperRuntime,
    cut: bool = True,
) -> Transcript:
    """``decoding``'s segment (prompt, language, no-speech probability) with these tokens, a
    loop in them cut (``cut_loop``; ``looped`` says so) unless ``cut`` is False. The mean
    log-probability is that of every token decoded, the loop's included."""
    kept, looped = cut_loop(tokens) if cut else (list(tokens), False)
    text = _tokenizer(runtime, decoding.language).decode(kept).strip()
    return dataclasses.replace(
        decoding,
        tokens=tuple(kept),
        text=text,
        avg_logprob=sum_logprob / (len(tokens) + 1),
        compression_ratio=compression_ratio(text),
        temperature=float(temperature),
        looped=looped,
    )


def _greedy_tokens(
    result: ctranslate2.models.WhisperGenerationResult,
) -> tuple[tuple[int, ...], float]:
    """Tokens and their summed log-probability (CTranslate2 scores their mean)."""
    tokens = tuple(result.sequences_ids[0])
    return tokens, float(result.scores[0]) * len(tokens)


def _choose(
    candidates: list[Transcript], config: WhisperConfig, looped: Collection[float] = ()
) -> Transcript:
    """The first candidate that passes (never one sampled at a temperature in ``looped``); if
    none does, Whisper's rule: the likeliest of those under the compression threshold that did
    not loop (a cut loop is under it), or of all."""
    for c in candidates:
        if c.temperature not in looped and not _needs_fallback(c, config):
            return c
    passing = [c for c in candidates if not too_repetitive(c, config) and not c.looped]
    return max(passing or candidates, key=lambda c: c.avg_logprob)


def too_repetitive(t: Transcript, config: WhisperConfig) -> bool:
    return (
        config.compression_ratio_threshold is not None
        and t.compression_ratio > config.compression_ratio_threshold
    )


def _needs_fallback(t: Transcript, config: WhisperConfig) -> bool:
    repetitive = too_repetitive(t, config) or t.looped  # a cut loop no longer looks repetitive
    too_unlikely = (
        config.log_prob_threshold is not None and t.avg_logprob < config.log_prob_threshold
    )
    silence = (
        config.no_speech_threshold is not None
        and t.no_speech_prob > config.no_speech_threshold
        and too_unlikely
    )
    return (repetitive or too_unlikely) and not silence


@torch.inference_mode()
def _sample(
    encoder_states: np.ndarray,  # (S, L, d): the segments the rows sample from
    row_segments: list[int],  # per row, its segment's index in encoder_states
    prompts: list[list[int]],  # per row, its prompt; all of one length
    temperatures: list[float],  # per row
    max_length: int,
    runtime: WhisperRuntime,
    seed: int,
    finished: Callable[[int, tuple[int, ...], float], bool],
    stuck: Callable[[int, tuple[int, ...]], bool] = lambda row, tokens: False,
) -> None:
    """Sample every row; ``finished(row, tokens, sum_logprob)`` receives each row's tokens (end
    token excluded) and the sum of their untempered log-probabilities as it ends. When it
    returns True (the row passed), the rows of the same segment at higher temperatures stop
    unfinished. A row also ends, with the tokens it has, once ``stuck(row, tokens)``. The rows
    share each decoder step; each draws from its own generator seeded with ``seed``, so its
    tokens do not depend on the other rows of the batch."""
    decoder = runtime.decoder
    count, prompt_length = len(prompts), len(prompts[0])
    generators = [torch.Generator().manual_seed(seed) for _ in range(count)]
    memory = torch.from_numpy(np.ascontiguousarray(encoder_states)).to(runtime.torch_device)
    cross = decoder.cross_kv(memory)  # once per segment, shared by its rows
    tempers = torch.tensor(temperatures, device=runtime.torch_device)[:, None]  # (R, 1)
    cache = SelfAttentionCache(len(decoder.layers))
    sequences = [list(p) for p in prompts]
    sum_logprobs = [0.0] * count
    active = list(range(count))  # rows still sampling, in the order of the tensors' rows
    step = torch.tensor(prompts, device=runtime.torch_device)  # (R, P), then (R, 1)
    length = prompt_length

    def end(i: int) -> set[int]:
        """Report row ``i`` finished; the rows it stops."""
        if not finished(i, tuple(sequences[i][prompt_length:]), sum_logprobs[i]):
            return set()
        return {
            j
            for j in active
            if row_segments[j] == row_segments[i] and temperatures[j] > temperatures[i]
        }

    while active and length < max_length:
        states = decoder(step, cross, cache, [row_segments[i] for i in active])[:, -1]  # (R, d)
        first_rows = len(active) if length == prompt_length else 0
        logits = runtime.mask_unemitted(decoder.logits(states).float(), first_rows)  # (R, vocab)
        log_probabilities = torch.log_softmax(logits, dim=-1).cpu()
        probabilities = torch.softmax(logits / tempers, dim=-1).cpu()
        going, stopped = {}, set()  # position in the batch -> its next token; rows stopped
        for position, i in enumerate(active):
            if i in stopped:
                continue
            token = int(torch.multinomial(probabilities[position], 1, generator=generators[i]))
            sum_logprobs[i] += float(log_probabilities[position, token])
            if token != runtime.end_of_text:
                sequences[i].append(token)
                if not stuck(i, tuple(sequences[i][prompt_length:])):
                    going[position] = token
                    continue
            stopped |= end(i) | {i}  # ended, or stuck: finished as it stands
        still = [p for p in going if active[p] not in stopped]
        if len(still) < len(active):  # finished rows leave the batch: no step is wasted
            keep = torch.tensor(still, device=runtime.torch_device, dtype=torch.long)
            cache.layers = [[t[keep] for t in layer] for layer in cache.layers]
            tempers = tempers[keep]
        next_tokens = [going[p] for p in still]
        active = [active[p] for p in still]
        step = torch.tensor(next_tokens, device=runtime.torch_device, dtype=torch.long)[:, None]
        length += 1
    stopped = set()
    for i in active:  # at the length limit: finished unended
        if i not in stopped:
            stopped |= end(i)

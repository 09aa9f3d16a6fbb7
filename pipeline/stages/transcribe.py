"""Transcribe segments from their encoder states with CTranslate2's ``generate``.

First every window is decoded greedily without timestamps, in its track's language (a vote
over the track's windows), and the windows whose text fails Whisper's checks fall back to
higher temperatures, but for those the caller settles (already judged sung, in the extraction):
the text the singing judgement reads. Then the windows judged sung are
decoded again with timestamps (``densify``): decoding without them often ends a dense window
after its first lines (a rap verse), so where the text stops well before the window's end the
same encoder states are decoded again from the last timestamp, conditioned on the window's text
so far, and what the continuation repeats of that text is dropped. A loop of one phrase is cut
after its second occurrence. These decodings search a beam (``dense_beam_size``); the judgement's
stays greedy. The text tokens are kept; the timestamps only steer the decoding.

The fallback samples in batched PyTorch decoder passes: CTranslate2's sampling cannot be
seeded reproducibly, so each row draws from a seeded generator, and identical inputs give
identical outputs on any worker. No window is conditioned on another: any one can be
recomputed alone.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Collection, Generator, Sequence
from typing import Any

import ctranslate2
import numpy as np
import torch
from faster_whisper.tokenizer import Tokenizer

from pipeline.config import WhisperConfig
from pipeline.models.whisper_decoder import SelfAttentionCache
from pipeline.models.whisper_runtime import WhisperRuntime
from pipeline.records import Transcript
from pipeline.stages.singing import lyric_words

MAX_LENGTH = 448  # Whisper's decoder positions
SECONDS_PER_TIMESTAMP = 0.02
WINDOW_S = 30.0
LOOP_MAX_PERIOD = 24  # tokens: the longest phrase a loop repeats
LOOP_MIN_REPEATS = 4  # a phrase said this many times in a row at the end is a loop


def compression_ratio(text: str) -> float:
    """Whisper's repetition score: bytes of text over bytes once zlib-compressed."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


Languages = list[tuple[str, float]]  # per segment: (language, probability)


def detect_languages(
    encoder_states: np.ndarray, runtime: WhisperRuntime, config: WhisperConfig
) -> list[list[tuple[str, float]]]:
    """Per segment of a (B, L, d) batch, its likeliest languages with their probabilities."""
    if config.language:
        return [[(config.language, 1.0)]] * len(encoder_states)
    if not runtime.model.is_multilingual:
        return [[("en", 1.0)]] * len(encoder_states)
    output = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoder_states))
    return [
        [(code[2:-2], float(p)) for code, p in r] for r in runtime.model.detect_language(output)
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


def prompt_tokens(tokenizer: Tokenizer, config: WhisperConfig) -> list[int]:
    """The prompt the text tokens follow, and the decoder states are computed after: without
    timestamps, whatever mode decoded the text."""
    return [*_initial_prompt(tokenizer, config), *tokenizer.sot_sequence, tokenizer.no_timestamps]


def _initial_prompt(tokenizer: Tokenizer, config: WhisperConfig) -> list[int]:
    if not config.initial_prompt:
        return []
    prompt = [tokenizer.sot_prev, *tokenizer.encode(" " + config.initial_prompt.strip())]
    return prompt[: MAX_LENGTH // 2]


def cut_loop(tokens: Sequence[int]) -> tuple[list[int], bool]:
    """``tokens`` with a trailing loop (one phrase of up to ``LOOP_MAX_PERIOD`` tokens said at
    least ``LOOP_MIN_REPEATS`` times in a row) cut after its second occurrence; whether one was.
    A decoder caught in a loop repeats until its length limit: the rest of it is no lyric."""
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
    (B, L, d) encoder states, in ``languages`` (default: each segment's own): what the singing
    judgement reads. One CTranslate2 call; its int8 products sum integers, so a segment's
    result does not depend on the others."""
    if encoder_states.ndim != 3:
        raise ValueError(f"encoder_states must be (B, L, d), got shape {encoder_states.shape}")
    if languages is None:
        languages = [d[0] for d in detect_languages(encoder_states, runtime, config)]
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
    return [
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


def densify(
    encoder_states: Sequence[np.ndarray],  # (L, d) per segment
    transcripts: list[Transcript],
    runtime: WhisperRuntime,
    config: WhisperConfig,
) -> list[Transcript]:
    """The segments' transcripts decoded again with timestamps, each continued where it stops
    early (``continuation``); the denser text replaces a transcript where ``replaces`` says so.
    Decoding without timestamps often ends a dense window after its first lines. Run on the
    sung windows only: on instrumental music timestamped decoding writes longer
    hallucinations, which the singing judgement, tuned on the text without timestamps, would
    take for lyrics."""
    if config.continue_rounds <= 0 or not transcripts:
        return transcripts
    dense: list[Transcript] = []
    for first in range(0, len(transcripts), config.batch_size):
        chosen = transcripts[first : first + config.batch_size]
        states = np.stack(encoder_states[first : first + config.batch_size])
        tokenizers = [_tokenizer(runtime, t.language) for t in chosen]
        prompts = [[*_initial_prompt(t, config), *t.sot_sequence] for t in tokenizers]
        firsts = [
            _decoding(r)
            for r in _generate(states, prompts, runtime, config, beam_size=config.dense_beam_size)
        ]
        rounds = [
            continuation(decoding, tokenizer, config)
            for decoding, tokenizer in zip(firsts, tokenizers, strict=True)
        ]
        for old, found in zip(chosen, _run_rounds(states, rounds, runtime, config), strict=True):
            found = dataclasses.replace(_candidate(old, *found, 0.0, runtime), timestamped=True)
            dense.append(found if replaces(old, found, config) else old)
    return dense


def replaces(old: Transcript, found: Transcript, config: WhisperConfig) -> bool:
    """Whether a window's denser transcript ``found`` replaces ``old``: it holds at least as
    many lyric words (those the singing judgement counts: a stock hallucination such as
    "Sous-titres réalisés par ...", which timestamped decoding writes on an outro, holds none)
    and does not repeat itself."""
    denser = len(lyric_words(found.text)) >= len(lyric_words(old.text))
    return denser and not too_repetitive(found, config)


Decoding = tuple[list[int], float]  # (tokens, mean log-prob)
Rounds = Generator[list[int], Decoding, tuple[tuple[int, ...], float]]


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


def _run_rounds(
    states: np.ndarray, rounds: list[Rounds], runtime: WhisperRuntime, config: WhisperConfig
) -> list[tuple[tuple[int, ...], float]]:
    """Drive each window's ``continuation``: the prompts of one length (CTranslate2 wants the
    start token at one position) share a decoding, which returns what each gets alone."""
    done: dict[int, tuple[tuple[int, ...], float]] = {}
    waiting: dict[int, list[int]] = {}  # window -> the prompt it waits on

    def step(window: int, reply: Decoding | None) -> None:
        try:
            rounds_ = rounds[window]
            waiting[window] = next(rounds_) if reply is None else rounds_.send(reply)
        except StopIteration as finished:
            done[window] = finished.value

    for window in range(len(rounds)):
        step(window, None)
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
        for window, reply in zip(windows, replies, strict=True):
            step(window, _decoding(reply))
    return [done[w] for w in range(len(rounds))]


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
            prompt = [tokenizer.sot_prev, *text[-context:]]
            generated, score = yield [*prompt, *tokenizer.sot_sequence, last]
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
            if not too_repetitive(_candidate(greedy[i], tokens, 0.0, temperature, runtime), config):
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
) -> Transcript:
    """``decoding``'s segment (prompt, language, no-speech probability) with these tokens."""
    text = _tokenizer(runtime, decoding.language).decode(list(tokens)).strip()
    return dataclasses.replace(
        decoding,
        tokens=tokens,
        text=text,
        avg_logprob=sum_logprob / (len(tokens) + 1),
        compression_ratio=compression_ratio(text),
        temperature=float(temperature),
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
    none does, Whisper's rule: the likeliest of those under the compression threshold (or of
    all)."""
    for c in candidates:
        if c.temperature not in looped and not _needs_fallback(c, config):
            return c
    passing = [
        c
        for c in candidates
        if config.compression_ratio_threshold is None
        or c.compression_ratio <= config.compression_ratio_threshold
    ]
    return max(passing or candidates, key=lambda c: c.avg_logprob)


def too_repetitive(t: Transcript, config: WhisperConfig) -> bool:
    return (
        config.compression_ratio_threshold is not None
        and t.compression_ratio > config.compression_ratio_threshold
    )


def _needs_fallback(t: Transcript, config: WhisperConfig) -> bool:
    repetitive = too_repetitive(t, config)
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

"""Transcribe segments from their encoder states with CTranslate2's ``generate``.

Greedy decoding with temperature fallback, as Whisper does it; no segment is conditioned on
another, so segments stay independent and any one can be recomputed alone. Segments are
decoded in batches (one greedy ``generate`` per batch, then the fallback temperatures of the
segments that fail sampled together): a batch is what fills a GPU, and on a CPU it streams
the decoder's weights once per step for all of its rows. CTranslate2's sampling cannot be
seeded reproducibly, so the fallback temperatures sample from the PyTorch decoder with a
seeded generator per row: identical inputs give identical outputs, on any worker.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Callable, Sequence

import ctranslate2
import numpy as np
import torch
from faster_whisper.tokenizer import Tokenizer

from pipeline.config import WhisperConfig
from pipeline.models.whisper_decoder import SelfAttentionCache
from pipeline.models.whisper_runtime import WhisperRuntime
from pipeline.records import Transcript

MAX_LENGTH = 448  # Whisper's decoder positions


def compression_ratio(text: str) -> float:
    """Whisper's repetition score: bytes of text over bytes once zlib-compressed."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _detect_languages(
    encoder_output: ctranslate2.StorageView, runtime: WhisperRuntime, count: int
) -> list[tuple[str, float]]:
    """(language, probability) of each segment of the batch, in one call."""
    if not runtime.model.is_multilingual:
        return [("en", 1.0)] * count
    return [(r[0][0][2:-2], float(r[0][1])) for r in runtime.model.detect_language(encoder_output)]


def prompt_tokens(tokenizer: Tokenizer, config: WhisperConfig) -> list[int]:
    prompt: list[int] = []
    if config.initial_prompt:
        prompt = [tokenizer.sot_prev, *tokenizer.encode(" " + config.initial_prompt.strip())]
        prompt = prompt[: MAX_LENGTH // 2]
    return [*prompt, *tokenizer.sot_sequence, tokenizer.no_timestamps]


def transcribe(
    encoder_states: np.ndarray, runtime: WhisperRuntime, config: WhisperConfig
) -> Transcript:
    """Decode one segment's (L, d) encoder states; the first temperature that passes wins."""
    if encoder_states.ndim != 2:
        raise ValueError(f"encoder_states must be (L, d), got shape {encoder_states.shape}")
    return transcribe_batch(encoder_states[None], runtime, config)[0]


def transcribe_batch(
    encoder_states: np.ndarray, runtime: WhisperRuntime, config: WhisperConfig
) -> list[Transcript]:
    """Decode a batch of (B, L, d) encoder states: ``greedy_batch``, then ``fall_back``. Each
    segment gets what sequential fallback gives it alone: the first temperature that passes."""
    return fall_back(encoder_states, greedy_batch(encoder_states, runtime, config), runtime, config)


def greedy_batch(
    encoder_states: np.ndarray, runtime: WhisperRuntime, config: WhisperConfig
) -> list[Transcript]:
    """The greedy (temperature 0) transcript of each of a batch of (B, L, d) encoder states:
    language detection and decoding take one CTranslate2 call each for the whole batch. Its
    int8 matrix products sum integers, so a segment's result does not depend on the others."""
    if encoder_states.ndim != 3:
        raise ValueError(f"encoder_states must be (B, L, d), got shape {encoder_states.shape}")
    encoder_output = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoder_states))
    count = len(encoder_states)
    if config.language:
        languages = [(config.language, 1.0)] * count
    else:
        languages = _detect_languages(encoder_output, runtime, count)
    prompts = [prompt_tokens(_tokenizer(runtime, language), config) for language, _ in languages]
    # Same length for every language (start, language, task, no-timestamps): no padding.
    greedy = runtime.model.generate(
        encoder_output,
        prompts,
        beam_size=1,
        max_length=_max_length(prompts[0], config),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=[-1],
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
        for prompt, (language, probability), result in zip(prompts, languages, greedy, strict=True)
    ]


def fall_back(
    encoder_states: Sequence[np.ndarray],  # (L, d) per segment
    greedy: list[Transcript],
    runtime: WhisperRuntime,
    config: WhisperConfig,
) -> list[Transcript]:
    """Whisper's temperature fallback for the segments whose greedy text fails its checks,
    sampled in batched PyTorch decoder passes. PyTorch's float products round differently
    with the number of rows, so the caller decides what shares a pass: the extraction passes
    one track at a time, and a track's scores do not depend on the tracks beside it."""
    sampled = [t for t in config.temperatures if t != 0.0]
    if 0.0 in config.temperatures:
        pending = [i for i, c in enumerate(greedy) if _needs_fallback(c, config)]
    else:
        pending = list(range(len(greedy)))
    # Every fallback temperature of every failing segment at once: most fallbacks on sung or
    # instrumental audio fail at every temperature, and one decoder step costs about the same
    # for a few rows as for one (it streams the same weights). Once a temperature passes, the
    # segment's higher ones are never chosen: they stop, and are not started.
    queue = [(i, temperature) for i in pending for temperature in sampled]
    samples: dict[tuple[int, float], Transcript] = {}
    passed: dict[int, float] = {}  # segment -> its lowest sampled temperature that passed

    while queue := [(i, t) for i, t in queue if t < passed.get(i, math.inf)]:
        chunk, queue = queue[: config.batch_size], queue[config.batch_size :]
        segments = sorted({i for i, _ in chunk})

        def finished(row: int, tokens: tuple[int, ...], sum_logprob: float) -> bool:
            i, temperature = chunk[row]  # noqa: B023 (called within this iteration)
            found = _candidate(greedy[i], tokens, sum_logprob, temperature, runtime)
            samples[i, temperature] = found
            if _needs_fallback(found, config):
                return False
            passed[i] = min(passed.get(i, math.inf), temperature)
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
        )

    def in_order(i: int) -> list[Transcript]:
        """The segment's candidates by temperature: greedy, then its samples if it failed."""
        return [
            greedy[i] if t == 0.0 else samples[i, t]
            for t in config.temperatures
            if t == 0.0 or (i, t) in samples
        ]

    return [_choose(in_order(i), config) for i in range(len(greedy))]


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


def _choose(candidates: list[Transcript], config: WhisperConfig) -> Transcript:
    """The first candidate that passes; if none does, Whisper's rule: the likeliest of those
    under the compression threshold (or of all)."""
    for c in candidates:
        if not _needs_fallback(c, config):
            return c
    passing = [
        c
        for c in candidates
        if config.compression_ratio_threshold is None
        or c.compression_ratio <= config.compression_ratio_threshold
    ]
    return max(passing or candidates, key=lambda c: c.avg_logprob)


def _needs_fallback(t: Transcript, config: WhisperConfig) -> bool:
    too_repetitive = (
        config.compression_ratio_threshold is not None
        and t.compression_ratio > config.compression_ratio_threshold
    )
    too_unlikely = (
        config.log_prob_threshold is not None and t.avg_logprob < config.log_prob_threshold
    )
    silence = (
        config.no_speech_threshold is not None
        and t.no_speech_prob > config.no_speech_threshold
        and too_unlikely
    )
    return (too_repetitive or too_unlikely) and not silence


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
) -> None:
    """Sample every row; ``finished(row, tokens, sum_logprob)`` receives each row's tokens (end
    token excluded) and the sum of their untempered log-probabilities as it ends. When it
    returns True (the row passed), the rows of the same segment at higher temperatures stop
    unfinished. The rows share each decoder step; each draws from its own generator seeded
    with ``seed``, so its tokens do not depend on the other rows of the batch."""
    decoder = runtime.decoder
    count, prompt_length = len(prompts), len(prompts[0])
    generators = [torch.Generator().manual_seed(seed) for _ in range(count)]
    memory = torch.from_numpy(np.ascontiguousarray(encoder_states)).to(runtime.torch_device)
    index = torch.tensor(row_segments, device=runtime.torch_device)
    cross = [(k[index], v[index]) for k, v in decoder.cross_kv(memory)]  # once per segment
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
        states = decoder(step, cross, cache)[:, -1]  # (R, d)
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
            if token == runtime.end_of_text:
                stopped |= end(i) | {i}
            else:
                sequences[i].append(token)
                going[position] = token
        still = [p for p in going if active[p] not in stopped]
        if len(still) < len(active):  # finished rows leave the batch: no step is wasted
            keep = torch.tensor(still, device=runtime.torch_device, dtype=torch.long)
            cross = [(k[keep], v[keep]) for k, v in cross]
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

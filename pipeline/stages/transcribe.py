"""Transcribe one segment from its encoder states with CTranslate2's ``generate``.

Greedy decoding with temperature fallback, as Whisper does it; each segment is decoded on its
own (no conditioning on the previous one), so segments stay independent and any one can be
recomputed alone. CTranslate2's sampling cannot be seeded reproducibly, so the fallback
temperatures sample from the PyTorch decoder with a seeded generator: identical inputs give
identical outputs, on any worker.
"""

from __future__ import annotations

import zlib

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
    """Decode a batch of (B, L, d) encoder states: language detection and greedy decoding in
    one call each for the whole batch (what fills a GPU), then the temperature fallback for
    only the segments that need it. Each segment's result equals its decoding alone."""
    if encoder_states.ndim != 3:
        raise ValueError(f"encoder_states must be (B, L, d), got shape {encoder_states.shape}")
    encoder_output = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoder_states))
    count = len(encoder_states)
    if config.language:
        languages = [(config.language, 1.0)] * count
    else:
        languages = _detect_languages(encoder_output, runtime, count)
    segment_tokenizers = [
        Tokenizer(runtime.tokenizer, runtime.model.is_multilingual, "transcribe", language)
        for language, _ in languages
    ]
    prompts = [prompt_tokens(tokenizer, config) for tokenizer in segment_tokenizers]
    # Same length for every language (start, language, task, no-timestamps): no padding.
    max_length = min(MAX_LENGTH, len(prompts[0]) + config.max_new_tokens)
    greedy = runtime.model.generate(
        encoder_output,
        prompts,
        beam_size=1,
        max_length=max_length,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=[-1],
    )
    return [
        _with_fallback(states, result, prompt, tokenizer, language, runtime, config)
        for states, result, prompt, tokenizer, language in zip(
            encoder_states, greedy, prompts, segment_tokenizers, languages, strict=True
        )
    ]


def _with_fallback(
    encoder_states: np.ndarray,  # (L, d)
    greedy: ctranslate2.models.WhisperGenerationResult,
    prompt: list[int],
    tokenizer: Tokenizer,
    language: tuple[str, float],
    runtime: WhisperRuntime,
    config: WhisperConfig,
) -> Transcript:
    """The greedy result, or the first sampled temperature that passes (Whisper's rule)."""
    max_length = min(MAX_LENGTH, len(prompt) + config.max_new_tokens)
    no_speech_prob = float(greedy.no_speech_prob)
    greedy_tokens = tuple(greedy.sequences_ids[0])
    greedy_sum_logprob = float(greedy.scores[0]) * len(greedy_tokens)
    candidates: list[Transcript] = []
    for temperature in config.temperatures:
        if temperature == 0.0:
            tokens, sum_logprob = greedy_tokens, greedy_sum_logprob
        else:
            tokens, sum_logprob = _sample(
                encoder_states, prompt, temperature, max_length, runtime, config.seed
            )
        text = tokenizer.decode(list(tokens)).strip()
        candidate = Transcript(
            prompt=tuple(prompt),
            tokens=tokens,
            text=text,
            language=language[0],
            language_probability=language[1],
            avg_logprob=sum_logprob / (len(tokens) + 1),
            no_speech_prob=no_speech_prob,
            compression_ratio=compression_ratio(text),
            temperature=float(temperature),
        )
        candidates.append(candidate)
        if not _needs_fallback(candidate, config):
            return candidate
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
    encoder_states: np.ndarray,  # (L, d)
    prompt: list[int],
    temperature: float,
    max_length: int,
    runtime: WhisperRuntime,
    seed: int,
) -> tuple[tuple[int, ...], float]:
    """Sampled tokens (end token excluded) and the sum of their untempered log-probabilities."""
    decoder = runtime.decoder
    generator = torch.Generator().manual_seed(seed)
    memory = torch.from_numpy(encoder_states[None]).to(runtime.torch_device)
    cross = decoder.cross_kv(memory)
    cache = SelfAttentionCache(len(decoder.layers))
    sequence = list(prompt)
    new_tokens = sequence
    sum_logprob = 0.0
    while len(sequence) < max_length:
        tokens = torch.tensor([new_tokens], device=runtime.torch_device)
        state = decoder(tokens, cross, cache)[0, -1:]  # (1, d)
        logits = runtime.mask_unemitted(decoder.logits(state).float(), len(sequence) == len(prompt))
        probabilities = torch.softmax(logits[0] / temperature, dim=-1).cpu()
        token = int(torch.multinomial(probabilities, 1, generator=generator))
        sum_logprob += float(torch.log_softmax(logits[0], dim=-1)[token])
        if token == runtime.end_of_text:
            break
        sequence.append(token)
        new_tokens = [token]
    return tuple(sequence[len(prompt) :]), sum_logprob

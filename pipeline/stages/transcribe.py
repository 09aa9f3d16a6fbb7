"""Transcribe one segment from its encoder states with CTranslate2's ``generate``.

Greedy decoding with temperature fallback, as Whisper does it; no segment is conditioned on
another, so segments stay independent and any one can be recomputed alone. Segments are
decoded in batches (one greedy ``generate`` per batch, one sampled pass per fallback
temperature for those that still fail): a batch is what fills a GPU, and on a CPU it streams
the decoder's weights once per step for all of its segments. CTranslate2's sampling cannot be
seeded reproducibly, so the fallback temperatures sample from the PyTorch decoder with a
seeded generator per segment: identical inputs give identical outputs, on any worker.
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
    """Decode a batch of (B, L, d) encoder states. Language detection and greedy decoding take
    one call each for the whole batch; each fallback temperature then samples, in one batched
    pass, only the segments that still fail. Each segment's result is its decoding alone."""
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
    no_speech = [float(g.no_speech_prob) for g in greedy]

    def candidate(i: int, tokens: tuple[int, ...], sum_logprob: float, temp: float) -> Transcript:
        text = segment_tokenizers[i].decode(list(tokens)).strip()
        return Transcript(
            prompt=tuple(prompts[i]),
            tokens=tokens,
            text=text,
            language=languages[i][0],
            language_probability=languages[i][1],
            avg_logprob=sum_logprob / (len(tokens) + 1),
            no_speech_prob=no_speech[i],
            compression_ratio=compression_ratio(text),
            temperature=float(temp),
        )

    candidates: list[list[Transcript]] = [[] for _ in range(count)]
    pending = list(range(count))  # segments whose every candidate so far needs a fallback
    for temperature in config.temperatures:
        if temperature == 0.0:
            found = [_greedy_tokens(greedy[i]) for i in pending]
        else:
            found = _sample(
                encoder_states[pending],
                [prompts[i] for i in pending],
                temperature,
                max_length,
                runtime,
                config.seed,
            )
        for i, (tokens, sum_logprob) in zip(pending, found, strict=True):
            candidates[i].append(candidate(i, tokens, sum_logprob, temperature))
        pending = [i for i in pending if _needs_fallback(candidates[i][-1], config)]
        if not pending:
            break
    return [_choose(c, config) for c in candidates]


def _greedy_tokens(
    result: ctranslate2.models.WhisperGenerationResult,
) -> tuple[tuple[int, ...], float]:
    """Tokens and their summed log-probability (CTranslate2 scores their mean)."""
    tokens = tuple(result.sequences_ids[0])
    return tokens, float(result.scores[0]) * len(tokens)


def _choose(candidates: list[Transcript], config: WhisperConfig) -> Transcript:
    """The first candidate that passes; if none does, Whisper's rule: the likeliest of those
    under the compression threshold (or of all)."""
    if not _needs_fallback(candidates[-1], config):
        return candidates[-1]
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
    encoder_states: np.ndarray,  # (B, L, d)
    prompts: list[list[int]],  # B prompts of one length
    temperature: float,
    max_length: int,
    runtime: WhisperRuntime,
    seed: int,
) -> list[tuple[tuple[int, ...], float]]:
    """Per segment, sampled tokens (end token excluded) and the sum of their untempered
    log-probabilities. The segments share each decoder step (one pass streams the weights
    once for all of them); each draws from its own generator seeded with ``seed``, so its
    tokens do not depend on the others in the batch."""
    decoder = runtime.decoder
    count, prompt_length = len(prompts), len(prompts[0])
    generators = [torch.Generator().manual_seed(seed) for _ in range(count)]
    memory = torch.from_numpy(np.ascontiguousarray(encoder_states)).to(runtime.torch_device)
    cross = decoder.cross_kv(memory)
    cache = SelfAttentionCache(len(decoder.layers))
    sequences = [list(p) for p in prompts]
    sum_logprobs = [0.0] * count
    running = set(range(count))
    step = torch.tensor(prompts, device=runtime.torch_device)  # (B, P), then (B, 1)
    length = prompt_length
    while running and length < max_length:
        states = decoder(step, cross, cache)[:, -1]  # (B, d)
        logits = decoder.logits(states).float()  # (B, vocab)
        for row in logits:
            runtime.mask_unemitted(row[None], length == prompt_length)  # in place, per row
        log_probabilities = torch.log_softmax(logits, dim=-1).cpu()
        probabilities = torch.softmax(logits / temperature, dim=-1).cpu()
        next_tokens = [runtime.end_of_text] * count  # finished rows are fed the end token
        for i in sorted(running):
            token = int(torch.multinomial(probabilities[i], 1, generator=generators[i]))
            sum_logprobs[i] += float(log_probabilities[i, token])
            if token == runtime.end_of_text:
                running.discard(i)
                continue
            sequences[i].append(token)
            next_tokens[i] = token
        step = torch.tensor(next_tokens, device=runtime.torch_device)[:, None]
        length += 1
    return [
        (tuple(seq[prompt_length:]), logprob)
        for seq, logprob in zip(sequences, sum_logprobs, strict=True)
    ]

"""Transcribe one segment from its encoder states with CTranslate2's ``generate``.

Greedy decoding with temperature fallback, as Whisper does it; each segment is decoded on its
own (no conditioning on the previous one), so segments stay independent and any one can be
recomputed alone.
"""

from __future__ import annotations

import zlib

import ctranslate2
import numpy as np
from faster_whisper.tokenizer import Tokenizer

from pipeline.config import WhisperConfig
from pipeline.models.whisper_runtime import WhisperRuntime
from pipeline.records import Transcript

MAX_LENGTH = 448  # Whisper's decoder positions


def compression_ratio(text: str) -> float:
    """Whisper's repetition score: bytes of text over bytes once zlib-compressed."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _detect_language(encoder_output: ctranslate2.StorageView, runtime: WhisperRuntime) -> tuple[str, float]:
    if not runtime.model.is_multilingual:
        return "en", 1.0
    token, probability = runtime.model.detect_language(encoder_output)[0][0]
    return token[2:-2], float(probability)


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
    encoder_output = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoder_states[None]))
    if config.language:
        language, language_probability = config.language, 1.0
    else:
        language, language_probability = _detect_language(encoder_output, runtime)
    tokenizer = Tokenizer(
        runtime.tokenizer, runtime.model.is_multilingual, task="transcribe", language=language
    )
    prompt = prompt_tokens(tokenizer, config)
    max_length = min(MAX_LENGTH, len(prompt) + config.max_new_tokens)
    candidates: list[Transcript] = []
    for temperature in config.temperatures:
        if temperature > 0:
            ctranslate2.set_random_seed(config.seed)  # sampled fallbacks stay reproducible
            sampling = {"sampling_temperature": temperature, "sampling_topk": 0}
        else:
            sampling = {}
        result = runtime.model.generate(
            encoder_output,
            [prompt],
            beam_size=1,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
            **sampling,
        )[0]
        tokens = tuple(result.sequences_ids[0])
        text = tokenizer.decode(list(tokens)).strip()
        candidate = Transcript(
            prompt=tuple(prompt),
            tokens=tokens,
            text=text,
            language=language,
            language_probability=language_probability,
            avg_logprob=float(result.scores[0]) * len(tokens) / (len(tokens) + 1),
            no_speech_prob=float(result.no_speech_prob),
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
    too_unlikely = config.log_prob_threshold is not None and t.avg_logprob < config.log_prob_threshold
    silence = (
        config.no_speech_threshold is not None
        and t.no_speech_prob > config.no_speech_threshold
        and too_unlikely
    )
    return (too_repetitive or too_unlikely) and not silence

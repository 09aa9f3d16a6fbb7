"""The shipped decoding steps, composed as ``pipeline.track`` composes them, for the tests
that check one step at a time."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from faster_whisper.tokenizer import Tokenizer

from pipeline.config import WhisperConfig
from pipeline.models.whisper_runtime import WhisperRuntime
from pipeline.records import Transcript
from pipeline.stages.transcribe import (
    Decoding,
    continuation,
    fall_back,
    greedy_batch,
    seek_rounds,
)


def decode_windows(
    states: np.ndarray, runtime: WhisperRuntime, config: WhisperConfig
) -> list[Transcript]:
    """(B, L, d) or (L, d) encoder states decoded as the extraction decodes them before the
    judgement: greedy, then the fallback where Whisper's checks fail."""
    batch = states[None] if states.ndim == 2 else states
    return fall_back(batch, greedy_batch(batch, runtime, config), runtime, config)


def continue_window(
    first: Decoding,
    decode: Callable[[list[int]], Decoding],
    tokenizer: Tokenizer,
    config: WhisperConfig,
) -> tuple[tuple[int, ...], float]:
    """The shipped ``continuation`` of one window, each prompt it yields answered by
    ``decode`` (a hand-built or a real decoder)."""
    rounds = continuation(first, tokenizer, config)
    try:
        prompt = next(rounds)
        while True:
            prompt = rounds.send(decode(prompt))
    except StopIteration as finished:
        return finished.value


def seek_window(
    first: Decoding,
    decode: Callable[[float, list[int]], Decoding],
    tokenizer: Tokenizer,
    config: WhisperConfig,
) -> tuple[list[tuple[float, tuple[int, ...]]], float]:
    """The shipped ``seek_rounds`` of one window, each seek (offset, prompt) answered by
    ``decode``."""
    rounds = seek_rounds(first, tokenizer, config)
    try:
        seek = next(rounds)
        while True:
            seek = rounds.send(decode(*seek))
    except StopIteration as finished:
        return finished.value

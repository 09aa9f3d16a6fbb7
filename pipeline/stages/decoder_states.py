"""Whisper decoder final-layer hidden states, one per generated text token.

One teacher-forced, batched pass over prompt + generated tokens gives, at each position, the
state from which the next token was predicted: the features WEALY keeps. The argmax of the
same pass is compared with CTranslate2's greedy tokens, which proves the states belong to the
tokens that were generated (``token_agreement``; 1.0 when both run at the same precision).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from pipeline.models.whisper_runtime import WhisperRuntime
from pipeline.records import Transcript
from pipeline.stages.transcribe import DenseText


@torch.inference_mode()
def decoder_states(
    encoder_states: np.ndarray,  # (B, L, d)
    transcripts: list[Transcript],
    runtime: WhisperRuntime,
) -> list[tuple[np.ndarray, float | None]]:
    """Per segment: (m, d) float16 states and the greedy agreement (None if sampled or
    decoded with timestamps)."""
    if encoder_states.ndim != 3 or encoder_states.shape[0] != len(transcripts):
        raise ValueError("need one (L, d) encoder state matrix per transcript")
    sequences = [list(t.prompt) + list(t.tokens) for t in transcripts]
    width = max(len(s) for s in sequences)
    tokens = torch.zeros(len(sequences), width, dtype=torch.long)
    for row, seq in enumerate(sequences):
        tokens[row, : len(seq)] = torch.tensor(seq)
    device = runtime.torch_device
    memory = torch.from_numpy(encoder_states).to(device)
    with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
        states = runtime.decoder(tokens.to(device), runtime.decoder.cross_kv(memory))  # (B, T, d)
    results: list[tuple[np.ndarray, float | None]] = []
    for row, t in enumerate(transcripts):
        start = len(t.prompt) - 1  # the last prompt position predicts the first text token
        kept = states[row, start : start + len(t.tokens)].float()  # (m, d)
        agreement = None
        if t.temperature == 0.0 and not t.timestamped and t.tokens:
            logits = runtime.mask_unemitted(runtime.decoder.logits(kept), first_rows=1)
            predicted = logits.argmax(-1).cpu()
            agreement = float((predicted == torch.tensor(t.tokens)).float().mean())
        results.append((kept.cpu().numpy().astype(np.float16), agreement))
    return results


def decoder_states_of(
    texts: Sequence[DenseText], runtime: WhisperRuntime, batch_size: int
) -> list[tuple[np.ndarray, float | None]]:
    """Per window: the states of its text's tokens, each part's against the encoder output it
    was decoded from (the window's own, or a seek's), in ``batch_size`` rows a pass; the
    agreement of a window decoded in one part (None for several)."""
    rows = [
        (k, dataclasses.replace(text.transcript, tokens=part.tokens), part.encoder_states)
        for k, text in enumerate(texts)
        for part in text.parts
    ]
    states: list[list[np.ndarray]] = [[] for _ in texts]
    agreements: list[float | None] = [None] * len(texts)
    for first in range(0, len(rows), batch_size):
        chunk = rows[first : first + batch_size]
        memory = np.stack([encoder for _, _, encoder in chunk])
        passes = decoder_states(memory, [t for _, t, _ in chunk], runtime)
        for (k, _, _), (part_states, agreement) in zip(chunk, passes, strict=True):
            states[k].append(part_states)
            agreements[k] = agreement if len(texts[k].parts) == 1 else None
    return [
        (np.concatenate(s) if len(s) > 1 else s[0], a)
        for s, a in zip(states, agreements, strict=True)
    ]

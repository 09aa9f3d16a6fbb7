"""Vocal separation: the seam where demucs plugs in.

``none`` passes the mixture through; WEALY's reference uses the mixture, and LIVI's vocal
segments come from the voice-activity detector, which works on mixtures too.
"""

from __future__ import annotations

from pipeline.config import SeparateConfig
from pipeline.records import DecodedAudio, Rejected


def separate_vocals(audio: DecodedAudio, config: SeparateConfig) -> DecodedAudio | Rejected:
    """Return the vocal stem of ``audio`` (the mixture itself for ``method: none``)."""
    if config.method == "none":
        return audio
    raise ValueError(f"unknown separation method {config.method!r}; known: none")

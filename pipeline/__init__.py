"""Lyrics-aware feature extraction for music version (cover) retrieval."""

__version__ = "0.1.0"

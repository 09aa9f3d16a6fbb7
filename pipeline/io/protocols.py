"""Which fsspec protocols a catalog's ``audio_path`` may use.

A catalog is data, often from outside. Were every fsspec protocol open, a row naming
``http://169.254.169.254/...`` would make each worker (and the driver, which fingerprints every
file) fetch that address, internal ones included. Local files and the object stores a cluster
keeps its audio in are allowed; any other protocol only once the user names it
(``run.allow_protocols``, ``--allow-protocols http,https``).
"""

from __future__ import annotations

from collections.abc import Collection

SAFE_PROTOCOLS = frozenset({"file", "s3", "gs", "gcs", "abfs", "abfss", "az"})


def url_protocols(audio_path: str) -> list[str]:
    """Every protocol of an fsspec URL, chained ones too (``simplecache::s3://b/k`` has two);
    none for a local path."""
    if "://" not in audio_path:
        return []
    return [part.split("://", 1)[0].strip().lower() for part in audio_path.split("::")]


def forbidden_protocol(audio_path: str, allowed: Collection[str] = ()) -> str | None:
    """The first protocol of ``audio_path`` neither safe nor allowed; None if it may be opened."""
    for protocol in url_protocols(audio_path):
        if protocol not in SAFE_PROTOCOLS and protocol not in allowed:
            return protocol
    return None

"""Which audio_path protocols are opened: local files and the object stores, others on request."""

from __future__ import annotations

import pytest

from pipeline.io.protocols import forbidden_protocol, url_protocols


@pytest.mark.parametrize(
    "audio_path",
    [
        "/music/a.wav",
        "relative/a b.wav",
        "file:///music/a.wav",
        "s3://bucket/a.mp3",
        "gs://bucket/a.mp3",
        "gcs://bucket/a.mp3",
        "abfs://container/a.mp3",
        "az://container/a.mp3",
        "S3://bucket/a.mp3",  # the protocol's case does not matter to fsspec
    ],
)
def test_local_files_and_object_stores_are_opened(audio_path: str) -> None:
    assert forbidden_protocol(audio_path) is None


@pytest.mark.parametrize(
    ("audio_path", "protocol"),
    [
        ("http://169.254.169.254/latest/meta-data", "http"),
        ("https://example.org/a.mp3", "https"),
        ("ftp://host/a.mp3", "ftp"),
        ("memory://a.wav", "memory"),
        ("simplecache::s3://bucket/a.mp3", "simplecache"),  # every link of a chain counts
        ("zip://a.wav::http://host/songs.zip", "zip"),
    ],
)
def test_other_protocols_are_refused_unless_allowed(audio_path: str, protocol: str) -> None:
    assert forbidden_protocol(audio_path) == protocol
    every = url_protocols(audio_path)
    assert forbidden_protocol(audio_path, every) is None


def test_allowing_one_link_of_a_chain_leaves_the_others_refused() -> None:
    assert forbidden_protocol("zip://a.wav::http://host/songs.zip", ("zip",)) == "http"
    assert forbidden_protocol("zip://a.wav::s3://bucket/songs.zip", ("zip",)) is None

from pathlib import Path

import numpy as np
import pytest

from pipeline.config import DecodeConfig
from pipeline.records import CatalogEntry, DecodedAudio, Rejected
from pipeline.stages.decode import decode_audio
from tests.audio_fixtures import ffmpeg_convert, write_float_wav
from tests.http_server import http_server

CONFIG = DecodeConfig()


def _entry(path: Path | str) -> CatalogEntry:
    return CatalogEntry(track_id="t", audio_path=str(path), line=2)


@pytest.mark.parametrize(
    ("suffix", "rate", "channels"),
    [
        ("wav", 44100, 2),
        ("flac", 48000, 1),
        ("mp3", 44100, 2),
        ("ogg", 22050, 1),
        ("m4a", 44100, 2),
        ("wav", 8000, 1),
        ("wav", 96000, 6),
    ],
)
def test_containers_decode_to_mono_16k(
    speech_wav: Path, tmp_path: Path, suffix: str, rate: int, channels: int
) -> None:
    source = ffmpeg_convert(speech_wav, tmp_path / f"speech.{suffix}", rate, channels)
    audio = decode_audio(_entry(source), CONFIG)
    assert isinstance(audio, DecodedAudio)
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.sample_rate_hz == 16000
    assert 2.5 < audio.samples.shape[0] / 16000 < 6.0
    assert not audio.truncated
    assert np.sqrt(np.mean(audio.samples**2)) > 0.01


def test_fsspec_urls_are_opened_through_fsspec(speech_wav: Path) -> None:
    audio = decode_audio(_entry(f"file://{speech_wav}"), CONFIG)
    assert isinstance(audio, DecodedAudio)
    missing = decode_audio(_entry(f"file://{speech_wav}.missing"), CONFIG)
    assert isinstance(missing, Rejected) and missing.reason == "file_not_found"


def test_long_audio_is_cut_at_max_duration(speech_wav: Path) -> None:
    audio = decode_audio(_entry(speech_wav), DecodeConfig(max_duration_s=1.0))
    assert isinstance(audio, DecodedAudio)
    assert audio.samples.shape == (16000,)
    assert audio.truncated


def test_partly_decodable_mp3_keeps_what_decodes(speech_wav: Path, tmp_path: Path) -> None:
    mp3 = ffmpeg_convert(speech_wav, tmp_path / "full.mp3")
    data = mp3.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    audio = decode_audio(_entry(cut), CONFIG)
    assert isinstance(audio, DecodedAudio)
    assert 0.5 < audio.samples.shape[0] / 16000 < 4.0
    assert "truncated" in audio.note or "decoding stopped" in audio.note


def _rejection(entry: CatalogEntry) -> Rejected:
    result = decode_audio(entry, CONFIG)
    assert isinstance(result, Rejected), result
    assert result.stage == "decode" and entry.audio_path in result.detail
    return result


def test_bad_files_are_rejected_with_a_reason(speech_wav: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    text = tmp_path / "notes.wav"
    text.write_text("these are my notes, not audio\n" * 20)
    silent = write_float_wav(tmp_path / "silent.wav", np.zeros(16000), 16000)
    nan = write_float_wav(tmp_path / "nan.wav", np.full(16000, np.nan), 16000)
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    mp3 = ffmpeg_convert(speech_wav, tmp_path / "full.mp3")
    stub = tmp_path / "stub.mp3"
    stub.write_bytes(mp3.read_bytes()[:200])
    expected = {
        tmp_path / "missing.wav": {"file_not_found"},
        tmp_path: {"not_a_file"},
        empty: {"empty_file"},
        text: {"undecodable"},
        silent: {"silent"},
        nan: {"non_finite_samples"},
        loop: {"symlink_loop"},
        stub: {"undecodable", "empty_audio"},
    }
    for path, reasons in expected.items():
        assert _rejection(_entry(path)).reason in reasons, path


def test_an_http_url_is_refused_unless_its_protocol_is_allowed(speech_wav: Path) -> None:
    with http_server(speech_wav.parent) as (base, asked):
        url = f"{base}/{speech_wav.name}"
        refused = _rejection(_entry(url))
        assert refused.reason == "protocol_not_allowed"
        assert "--allow-protocols http" in refused.detail and "\n" not in refused.detail
        assert asked == []  # not one request left the worker
        allowed = decode_audio(_entry(url), CONFIG, allow_protocols=("http",))
        assert isinstance(allowed, DecodedAudio), allowed
        assert asked and 2.5 < allowed.samples.shape[0] / 16000 < 6.0


def test_an_in_memory_url_is_refused() -> None:
    assert _rejection(_entry("memory://song.wav")).reason == "protocol_not_allowed"

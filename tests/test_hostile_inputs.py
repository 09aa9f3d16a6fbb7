"""Hostile and broken inputs, full disks and concurrent runs: the batch goes on, nothing lost."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.io.output_dir import file_record
from pipeline.io.parquet import read_table
from tests.conftest import REPO, extract_command, run_extract
from tests.http_server import http_server

pytestmark = pytest.mark.integration


def _extract(catalog: Path, output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_extract(catalog, output, "--workers", "1", *extra)


def test_non_utf8_and_very_long_file_names(speech_wav: Path, tmp_path: Path) -> None:
    latin1 = os.fsencode(tmp_path) + b"/caf\xe9.wav"
    shutil.copyfile(speech_wav, latin1)
    long_name = tmp_path / ("x" * 240 + ".wav")
    shutil.copyfile(speech_wav, long_name)
    catalog = tmp_path / "catalog.csv"
    catalog.write_bytes(
        b"track_id,audio_path\nlatin1," + latin1 + b"\nlong," + os.fsencode(long_name) + b"\n"
    )
    result = _extract(catalog, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    tracks = {
        t["track_id"]: t for t in read_table(tmp_path / "out" / "tracks", "tracks").to_pylist()
    }
    assert tracks["latin1"]["status"] == "ok" and tracks["long"]["status"] == "ok"
    assert tracks["latin1"]["audio_path"].endswith("caf\\xe9.wav")
    again = _extract(catalog, tmp_path / "out")
    assert "processed   0 track(s)" in again.stdout  # the plan matches non-UTF-8 ids too


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_unreadable_file_is_rejected_as_permission_denied(speech_wav: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked.wav"
    shutil.copyfile(speech_wav, locked)
    locked.chmod(0)
    tmp_path.chmod(0o755)
    code = (
        "from pipeline.config import DecodeConfig; from pipeline.records import CatalogEntry;"
        "from pipeline.stages.decode import decode_audio;"
        f"print(decode_audio(CatalogEntry('t', {str(locked)!r}, 2), DecodeConfig()).reason)"
    )
    result = subprocess.run(
        [
            "setpriv",
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    assert result.stdout.strip() == "permission_denied", result.stderr


def test_a_catalog_cannot_make_the_workers_fetch_urls(speech_wav: Path, tmp_path: Path) -> None:
    """http and in-memory paths are rejected per track, never fetched (the driver's plan does
    not ask either), and the batch goes on. The flags reach the resolved config (no track gets
    to Whisper here: the cheapest run that parses them; tests/stages/test_whisper_stages.py
    follows --initial-prompt's text into the decoder)."""
    silent = tmp_path / "silent.wav"
    with wave.open(str(silent), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(bytes(32_000))
    catalog = tmp_path / "catalog.csv"
    with http_server(speech_wav.parent) as (base, asked):
        rows = [f"web,{base}/{speech_wav.name}", "mem,memory://song.wav", f"quiet,{silent}"]
        catalog.write_text("track_id,audio_path\n" + "\n".join(rows) + "\n")
        flags = ["--allow-protocols", "ftp", "--initial-prompt", "A folk song."]
        result = _extract(catalog, tmp_path / "out", *flags)
        assert asked == []
    assert result.returncode == 0, result.stderr
    tracks = {
        t["track_id"]: t for t in read_table(tmp_path / "out" / "tracks", "tracks").to_pylist()
    }
    assert {tid: t["reason"] for tid, t in tracks.items()} == {
        "web": "protocol_not_allowed",
        "mem": "protocol_not_allowed",
        "quiet": "silent",
    }
    assert "--allow-protocols http" in tracks["web"]["detail"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["config"]["run"]["allow_protocols"] == ["ftp"]
    assert manifest["config"]["whisper"]["initial_prompt"] == "A folk song."


def test_three_hour_file_decodes_in_bounded_memory(tmp_path: Path) -> None:
    long_file = tmp_path / "three-hours.wav"
    rate, seconds = 8000, 3 * 3600
    with wave.open(str(long_file), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        minute = (np.sin(np.arange(60 * rate) * 0.05) * 8000).astype(np.int16).tobytes()
        for _ in range(seconds // 60):
            w.writeframes(minute)
    code = (
        "from pipeline.config import DecodeConfig;"
        "from pipeline.records import CatalogEntry;"
        "from pipeline.stages.decode import decode_audio;"
        f"a = decode_audio(CatalogEntry('t', {str(long_file)!r}, 2), DecodeConfig());"
        "peak = open('/proc/self/status').read().split('VmHWM:')[1].split()[0];"
        "print(a.samples.shape[0], a.truncated, peak)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    samples, truncated, peak_kib = result.stdout.split()
    assert int(samples) == 300 * 16000 and truncated == "True"
    assert int(peak_kib) < 400 * 1024  # VmHWM; the 172 MB file is never held whole


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2600k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_fails_the_partition_cleanly_and_resumes(
    speech_wav: Path, small_disk: Path, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("track_id,audio_path\n" + "".join(f"t{i},{speech_wav}\n" for i in range(3)))
    output = small_disk / "out"
    result = _extract(catalog, output, "--partition-size", "1")
    assert result.returncode == 1
    assert "No space left on device" in result.stdout
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["status"] == "incomplete"
    assert 1 <= len(manifest["partitions"]) < 3
    for part in manifest["partitions"]:
        for rel, record in part["files"].items():
            assert file_record(output / rel) == record
    assert not list(output.rglob(".tmp-*"))

    subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], check=True)
    resumed = _extract(catalog, output, "--partition-size", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed     {len(manifest['partitions'])} partition(s)" in resumed.stdout
    tracks = read_table(output / "tracks", "tracks").to_pylist()
    assert sorted(t["track_id"] for t in tracks) == ["t0", "t1", "t2"]


def test_a_second_run_on_the_same_output_is_refused(speech_wav: Path, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(f"track_id,audio_path\nt0,{speech_wav}\n")
    output = tmp_path / "out"
    first = subprocess.Popen(
        extract_command(catalog, output, "--workers", "1"),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (output / "manifest.json").exists():
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.1)
    second = _extract(catalog, output)
    first.wait(timeout=300)
    assert second.returncode == 2
    assert "another extraction is running on this folder" in second.stderr
    assert first.returncode == 0

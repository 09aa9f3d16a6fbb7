"""Shared fixtures: real synthesised audio, the example catalog and one extraction run of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio_fixtures import espeak
from tests.s3_server import S3Server, s3_server

os.environ["HF_HUB_OFFLINE"] = "1"
REPO = Path(__file__).resolve().parents[1]
PIPELINE = str(Path(sys.executable).with_name("pipeline"))


@pytest.fixture(scope="session", autouse=True)
def _tools() -> None:
    missing = [t for t in ("espeak-ng", "ffmpeg") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run `make setup`")


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About three seconds of English speech, 22.05 kHz mono."""
    target = tmp_path_factory.mktemp("speech") / "river.wav"
    return espeak("The river runs down to the sea, carry my heart back home to me.", target)


@pytest.fixture(scope="session")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("example")
    subprocess.run([PIPELINE, "make-example", "--output", str(target)], check=True)
    return target


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIPELINE, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def extract_command(catalog: Path, output: Path | str, *extra: str) -> list[str]:
    """The whole ``pipeline run extract`` command line, for ``run_cli`` or ``Popen``."""
    return [PIPELINE, "run", "extract", "--input", str(catalog), "--output", str(output), *extra]


def run_extract(catalog: Path, output: Path | str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*extract_command(catalog, output, *extra)[1:])


@pytest.fixture(scope="session")
def example_extraction(
    example_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The example catalog extracted by the CLI on a LocalCluster, in partitions of three, with
    its logs as JSON lines (text logging has runs of its own in tests/test_extract_cli.py):
    the output folder and the finished command."""
    output = tmp_path_factory.mktemp("features")
    result = run_extract(
        example_dir / "catalog.csv", output, "--partition-size", "3", "--log-format", "json"
    )
    assert result.returncode == 0, result.stderr
    return output, result


@pytest.fixture(scope="session")
def example_features(example_extraction: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    return example_extraction[0]


@pytest.fixture(scope="session")
def tiny_htdemucs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random HTDemucs saved like the released ones (``tests/separator_fixtures.py``)."""
    from tests.separator_fixtures import save_htdemucs

    return save_htdemucs(tmp_path_factory.mktemp("htdemucs"))


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """A real S3-compatible server on 127.0.0.1 (``tests/s3_server.py``), for the session."""
    with s3_server() as server:
        yield server


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """The writer's credentials and the server's endpoint in the environment, as a user's
    shell or a pod would have them; fsspec's cached clients forgotten."""
    from s3fs import S3FileSystem

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    S3FileSystem.clear_instance_cache()
    yield s3
    S3FileSystem.clear_instance_cache()

"""Finding the audio in a folder by content: a generated folder with nested and oddly named
folders, files that are not audio (one named like audio), audio without an extension, and
symbolic links that loop."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from pipeline.io.catalog import read_catalog
from pipeline.io.discover import DiscoveryError, discover_audio, require_audio, sniff, write_catalog
from pipeline.plan import make_plan, plan_document, track_fingerprint
from tests.audio_fixtures import write_float_wav
from tests.conftest import REPO

RATE = 16_000


def _tone(target: Path, seconds: float = 0.5, hz: float = 440.0) -> Path:
    t = np.arange(int(seconds * RATE)) / RATE
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_float_wav(target, 0.3 * np.sin(2 * np.pi * hz * t), RATE)


def _encode(source: Path, target: Path, *args: str) -> Path:
    """``source`` re-encoded by ffmpeg; ``args`` (codec, format) go before the target."""
    target.parent.mkdir(parents=True, exist_ok=True)
    command = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", str(source), *args]
    subprocess.run([*command, str(target)], check=True)
    return target


# track_id -> what the content is
AUDIO = {
    "Album One/01 Intro.wav": "wav",
    "Album One/CD 2/02 Song.flac": "flac",
    "Ünïcode Ärtist 日本/03 café (live).mp3": "mp3",
    "loose/track without extension": "mp3",  # MPEG frames, no ID3 tag
    "loose/voice.m4a": "m4a",
    "loose/clip.mp4": "probed",  # an MP4 brand that may be video: FFmpeg finds the audio
    "loose/radio.ogg": "ogg",
    "leading space.wav": "wav",  # " leading space.wav": the ends stripped, as in any catalog
    "line\\x0abreak.wav": "wav",  # a newline in the name
    "caf\\xe9 latin1.wav": "wav",  # a name that is not UTF-8
    "mac/Caf\u00e9.wav": "wav",  # decomposed on disk ("e" and an accent): the id is NFC
}
SKIPPED = {
    "notes.txt": "not_audio",
    "Album One/cover.jpg": "not_audio",
    "Album One/.DS_Store": "not_audio",
    "loose/fake.mp3": "not_audio_despite_name",  # a text file named like audio
    "loose/random.bin": "not_audio",  # unknown bytes: FFmpeg cannot open them
    "empty.wav": "empty_file",
    "trailing space.wav ": "unsupported_name",
    "fifo": "not_a_regular_file",
    "loop-to-root": "symlink_loop",
    "Album One/CD 2/up": "symlink_loop",
    "self-loop": "symlink_loop",
    "dangling.mp3": "broken_symlink",
    "alias.wav": "duplicate_file",  # a link to a file also reached by its real path
    "Album Link": "duplicate_folder",  # a link to a folder walked by its real path
    "features": "output_folder",
    "mac/Caf\u00e9.wav": "duplicate_track_id",  # composed on disk: the same id
}


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("music")
    tone = _tone(root / "Album One" / "01 Intro.wav")
    _encode(tone, root / "Album One" / "CD 2" / "02 Song.flac")
    _encode(tone, root / "Ünïcode Ärtist 日本" / "03 café (live).mp3")
    _encode(tone, root / "loose" / "track without extension", "-id3v2_version", "0", "-f", "mp3")
    _encode(tone, root / "loose" / "voice.m4a", "-c:a", "aac")
    _encode(tone, root / "loose" / "clip.mp4", "-c:a", "aac", "-brand", "isom")
    _encode(tone, root / "loose" / "radio.ogg", "-c:a", "libvorbis")
    shutil.copyfile(tone, root / " leading space.wav")
    shutil.copyfile(tone, root / "line\nbreak.wav")
    shutil.copyfile(tone, os.fsencode(root) + b"/caf\xe9 latin1.wav")
    shutil.copyfile(tone, root / "trailing space.wav ")
    (root / "mac").mkdir()
    shutil.copyfile(tone, root / "mac" / "Cafe\u0301.wav")
    shutil.copyfile(tone, root / "mac" / "Caf\u00e9.wav")
    (root / "notes.txt").write_text("tracklist:\n1. Intro\n2. Song\n")
    (root / "Album One" / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    (root / "Album One" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
    (root / "loose" / "fake.mp3").write_text("this is not an mp3\n" * 20)
    rng = np.random.default_rng(0)
    (root / "loose" / "random.bin").write_bytes(b"\x00\x07" + rng.bytes(4000))
    (root / "empty.wav").touch()
    os.mkfifo(root / "fifo")
    (root / "loop-to-root").symlink_to(root)
    (root / "Album One" / "CD 2" / "up").symlink_to("../..")
    (root / "self-loop").symlink_to("self-loop")
    (root / "dangling.mp3").symlink_to("nowhere.mp3")
    (root / "alias.wav").symlink_to("Album One/01 Intro.wav")
    (root / "Album Link").symlink_to("Album One")
    _tone(root / "features" / "stems" / "a.wav")  # the run's own output, inside the folder
    return root


def test_audio_is_found_by_content_and_everything_else_is_skipped_with_a_reason(
    music: Path,
) -> None:
    found = discover_audio(music, exclude=(music / "features",))
    assert {f.track_id: f.kind for f in found.found} == AUDIO
    assert [f.track_id for f in found.found] == sorted(AUDIO)
    assert {s.path: s.reason for s in found.skipped} == SKIPPED
    assert found.skipped_counts()["symlink_loop"] == 3
    by_path = {s.path: s for s in found.skipped}
    assert "named .mp3" in by_path["loose/fake.mp3"].detail
    assert by_path["alias.wav"].detail.startswith("the same file as 'Album One/01 Intro.wav'")
    for f in found.found:
        assert os.path.isfile(f.audio_path) and Path(f.audio_path).is_absolute()


def test_the_catalog_reads_back_with_the_same_ids_and_paths(music: Path, tmp_path: Path) -> None:
    found = discover_audio(music, exclude=(music / "features",))
    catalog, skipped = tmp_path / "catalog.csv", tmp_path / "skipped.csv"
    write_catalog(found, catalog, skipped)
    entries = read_catalog(catalog)
    assert [(e.track_id, e.audio_path) for e in entries] == [
        (f.track_id, f.audio_path) for f in found.found
    ]
    assert all(e.work_id is None and e.title is None and e.artist is None for e in entries)
    assert catalog.read_bytes().startswith(b"track_id,audio_path,work_id,title,artist\n")
    assert len(skipped.read_bytes().splitlines()) == 1 + len(SKIPPED)
    assert not list(tmp_path.glob(".tmp-*"))


def test_the_same_folder_gives_the_same_catalog_and_new_files_only_add_tracks(
    music: Path, tmp_path: Path
) -> None:
    """A re-run keeps every partition of the earlier plan and adds one for the new files."""
    root = tmp_path / "music"
    shutil.copytree(music / "Album One", root / "Album One", symlinks=True)
    shutil.copytree(music / "loose", root / "loose", symlinks=True)
    first = discover_audio(root)
    write_catalog(first, tmp_path / "first.csv")
    again = discover_audio(root)
    write_catalog(again, tmp_path / "again.csv")
    assert (tmp_path / "first.csv").read_bytes() == (tmp_path / "again.csv").read_bytes()

    entries = read_catalog(tmp_path / "first.csv")
    fingerprints = {e.track_id: track_fingerprint(e) for e in entries}
    plan = plan_document(make_plan(entries, fingerprints, None, 2), fingerprints)
    _tone(root / "new" / "added.wav", hz=220.0)
    write_catalog(discover_audio(root), tmp_path / "later.csv")
    later = read_catalog(tmp_path / "later.csv")
    fingerprints = {e.track_id: track_fingerprint(e) for e in later}
    partitions = make_plan(later, fingerprints, plan, 2)
    kept = plan_document(partitions, fingerprints)["partitions"]
    assert kept[: len(plan["partitions"])] == plan["partitions"]
    assert [t for t, _ in kept[-1]["tracks"]] == ["new/added.wav"]


def test_a_folder_without_audio_names_the_folder_and_what_was_skipped(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no music here\n")
    with pytest.raises(DiscoveryError) as error:
        require_audio(discover_audio(tmp_path))
    assert str(tmp_path) in str(error.value)
    assert "no audio files found" in str(error.value) and "1 not_audio" in str(error.value)
    with pytest.raises(DiscoveryError, match="not a folder"):
        discover_audio(tmp_path / "readme.txt")
    with pytest.raises(DiscoveryError, match="cannot read this folder"):
        discover_audio(tmp_path / "missing")


_DISCOVER = """
import json, sys
from pathlib import Path
from pipeline.io.discover import discover_audio
found = discover_audio(Path(sys.argv[1]))
skipped = {s.path: s.reason for s in found.skipped}
print(json.dumps({"found": [f.track_id for f in found.found], "skipped": skipped}))
"""


def _as_a_user(*command: str) -> list[str]:
    """``command`` as a user runs it: root (CI, the images) reads any file, so as root it runs
    as nobody under setpriv, as tests/test_hostile_inputs.py does."""
    if os.geteuid() != 0:
        return list(command)
    return ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", *command]


@pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None,
    reason="as root, needs setpriv (util-linux) to run as a user",
)
def test_unreadable_files_and_folders_are_skipped() -> None:
    # Not under tmp_path: its parents are root's alone, and the user must reach the folder.
    with tempfile.TemporaryDirectory(prefix="discover-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        _tone(root / "ok.wav")
        _tone(root / "locked.wav").chmod(0)
        (root / "closed").mkdir()
        (root / "closed").chmod(0)
        try:
            result = subprocess.run(
                _as_a_user(sys.executable, "-c", _DISCOVER, str(root)),
                capture_output=True,
                text=True,
                cwd=REPO,
                env=os.environ | {"PYTHONPATH": str(REPO)},
            )
        finally:
            (root / "closed").chmod(0o755)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["found"] == ["ok.wav"]
    assert found["skipped"] == {"locked.wav": "unreadable", "closed": "unreadable_folder"}


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "wav"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", "probe"),
        (b"FORM\x00\x00\x00\x00AIFFCOMM", "aiff"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00", "m4a"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00", "probe"),
        (b"\xff\xfb\x90\x64" + bytes(20), "mp3"),  # MPEG-1 layer III, 128 kb/s, 44.1 kHz
        (b"\xff\xf1\x50\x80" + bytes(20), "aac"),  # ADTS
        (b"\xff\xfb\xf0\x64" + bytes(20), "probe"),  # bitrate index 15: not a frame
        (b"\xff\xd8\xff\xe0" + bytes(20), None),  # JPEG
        (b"plain text, \xc3\xa9t\xc3\xa9\n", None),
        (b"\x1aE\xdf\xa3\x01\x00", "probe"),  # Matroska or WebM
    ],
)
def test_first_bytes(head: bytes, kind: str | None) -> None:
    assert sniff(head)[0] == kind

"""Find the audio files under a folder, by content, and make a catalog of them.

``pipeline run extract --input DIR`` and ``pipeline catalog DIR`` walk the folder, following
symbolic links but never twice into the same folder, and keep every file whose first bytes
say audio (RIFF/WAVE, fLaC, ID3 or an MPEG frame, OggS, an M4A ``ftyp``, ...), whatever its
name: a text file named ``.mp3`` is skipped, an MP3 without an extension is kept. A container
that may hold video only (MP4, Matroska, ASF) and a file of unknown kind are kept when FFmpeg
finds an audio stream in them. Each track's id is its path relative to the folder, so a re-run
on the same folder, here or on another machine, gives the same ids.

Every other file is skipped with a reason (``not_audio``, ``empty_file``, ``symlink_loop``,
...) and counted, never dropped silently.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
import logging
import os
import stat
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.io.atomic import atomic_write_bytes
from pipeline.io.catalog import CatalogError, read_catalog
from pipeline.io.object_store import is_url, join
from pipeline.io.output_dir import INPUT_CATALOG, INPUT_SKIPPED, OutputDir
from pipeline.records import CatalogEntry

log = logging.getLogger(__name__)

# Names people give audio files; only used to say "named like audio but is not".
AUDIO_SUFFIXES = frozenset(
    ".aac .ac3 .aif .aifc .aiff .alac .amr .ape .au .caf .dsf .flac .m4a .m4b .mka .mp2 .mp3 "
    ".mpc .oga .ogg .opus .snd .tta .wav .weba .wma .wv".split()
)
_SNIFF_BYTES = 512
CATALOG_COLUMNS = ("track_id", "audio_path", "work_id", "title", "artist")


class DiscoveryError(CatalogError):
    """The folder gives no catalog: it is missing, unreadable or holds no audio."""


@dataclass(frozen=True)
class FoundAudio:
    track_id: str  # the path relative to the folder, POSIX separators, control chars escaped
    audio_path: str  # absolute, through the folder (a symlink stays a symlink)
    kind: str  # what the content looks like: wav, flac, mp3, ... or "probed"
    title: str | None = None  # from the file's tags, with ``with_tags`` only
    artist: str | None = None


@dataclass(frozen=True)
class Skipped:
    path: str  # relative to the folder
    reason: str
    detail: str


@dataclass
class Discovery:
    root: Path
    found: list[FoundAudio] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def skipped_counts(self) -> Counter[str]:
        return Counter(s.reason for s in self.skipped)

    def describe_skipped(self) -> str:
        """``3 not_audio, 1 symlink_loop`` (most common first, then by name), or ``none``."""
        counts = sorted(self.skipped_counts().items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{n} {reason}" for reason, n in counts) or "none"


# --- what a file's first bytes say -------------------------------------------------------


def _mpeg_frame(head: bytes) -> str | None:
    """``mp3`` (any MPEG audio layer) or ``aac`` (ADTS) when ``head`` opens with a valid frame
    header, checked field by field: eleven sync bits alone match too much binary data."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    if layer == 0:  # ADTS: MPEG-4 AAC in an MPEG audio stream
        return "aac" if version & 0b10 and (head[2] >> 2) & 0xF < 13 else None
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0b11
    return "mp3" if version != 0b01 and bitrate != 0xF and rate != 0b11 else None


_RIFF_KINDS = {b"WAVE": "wav", b"AVI ": None, b"RMID": "midi"}
_PLAIN_MAGIC = (  # prefix -> kind; None: certainly not audio
    (b"fLaC", "flac"),
    (b"ID3", "mp3"),
    (b"OggS", "ogg"),
    (b"RF64", "wav"),
    (b"BW64", "wav"),
    (b"MAC ", "ape"),
    (b"wvpk", "wavpack"),
    (b"caff", "caf"),
    (b"#!AMR", "amr"),
    (b"TTA1", "tta"),
    (b"DSD ", "dsf"),
    (b"FRM8", "dsdiff"),
    (b".snd", "au"),
    (b"MPCK", "musepack"),
    (b"MP+", "musepack"),
    (b"\x0b\x77", "ac3"),
    (b"\xff\xd8\xff", None),  # JPEG
    (b"\x89PNG", None),
    (b"GIF8", None),
    (b"%PDF", None),
    (b"PK\x03\x04", None),  # zip, docx, epub
    (b"MThd", None),  # MIDI: notes, not sound
)
# May hold only video: kept when FFmpeg finds an audio stream.
_CONTAINERS = ((b"\x1aE\xdf\xa3", "matroska"), (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "asf"))
_AUDIO_MP4_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ")


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # not just a character cut at the end of the sample
            return False
        text = head[: e.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\n\r\f" for c in text)


def sniff(head: bytes) -> tuple[str | None, str]:
    """What the first bytes of a file say: ``(kind, "")`` for audio, ``(None, what)`` for
    certainly not audio, ``("probe", what)`` when only FFmpeg can tell."""
    if head[:4] in (b"RIFF", b"RIFX") and len(head) >= 12:
        kind = _RIFF_KINDS.get(head[8:12], "probe")
        if kind == "midi":
            return None, "a MIDI file (notes, not sound)"
        return (kind, "") if kind else ("probe", "a RIFF AVI container")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff", ""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return ("m4a", "") if brand in _AUDIO_MP4_BRANDS else ("probe", "an MP4/QuickTime file")
    for magic, kind in _CONTAINERS:
        if head.startswith(magic):
            return "probe", f"a {kind} container"
    for magic, kind in _PLAIN_MAGIC:
        if head.startswith(magic):
            return (kind, "") if kind else (None, f"starts with {magic!r}, not audio")
    if kind := _mpeg_frame(head):
        return kind, ""
    if _looks_like_text(head):
        return None, "text"
    return "probe", "unknown binary"


def _has_audio_stream(path: str) -> tuple[bool, str]:
    import av  # only for files the first bytes cannot tell

    try:
        with av.open(path, metadata_errors="ignore") as container:
            return bool(container.streams.audio), "FFmpeg finds no audio stream"
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        return False, f"FFmpeg cannot open it ({getattr(e, 'strerror', None) or e})"


# --- walking the folder ------------------------------------------------------------------


def _track_id(rel: str) -> str:
    """``rel`` as text that every output table can hold: bytes that are not UTF-8 and control
    characters (a newline in a name) become backslash escapes; the ends are stripped, as the
    catalog reader strips each cell. NFC: a copy whose names a Mac wrote decomposed ("e" and
    an accent) gives the same ids."""
    text = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text = unicodedata.normalize("NFC", text)
    escaped = "".join(f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" else c for c in text)
    return escaped.strip()


@dataclass
class _Walk:
    discovery: Discovery
    excluded: set[tuple[int, int]]
    folders: dict[tuple[int, int], str] = field(default_factory=dict)  # walked, by inode
    files: dict[tuple[int, int], str] = field(default_factory=dict)  # kept, by inode
    track_ids: set[str] = field(default_factory=set)

    def skip(self, rel: str, reason: str, detail: str) -> None:
        self.discovery.skipped.append(Skipped(rel, reason, detail))
        log.info("skipped %s: %s (%s)", rel, reason, detail)


def _key(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def discover_audio(root: Path, exclude: tuple[Path, ...] = ()) -> Discovery:
    """Every audio file under ``root``, sorted by path, and every other file with its reason.

    Folders in ``exclude`` (e.g. the output folder, when it lies inside ``root``) are not
    walked. Raises ``DiscoveryError`` when ``root`` is not a readable folder."""
    root = Path(root).expanduser().absolute()
    try:
        root_stat = root.stat()
    except OSError as e:
        raise DiscoveryError(f"{root}: cannot read this folder ({e.strerror})") from None
    if not stat.S_ISDIR(root_stat.st_mode):
        raise DiscoveryError(f"{root}: not a folder; pass a folder of music or a catalog CSV")
    excluded = set()
    for path in exclude:
        try:
            excluded.add(_key(Path(path).expanduser().stat()))
        except OSError:
            continue  # not made yet: nothing inside it to leave out
    walk = _Walk(Discovery(root), excluded)
    walk.folders[_key(root_stat)] = ""
    # Names sorted: the same folder gives the same result on every run. Symbolic links are
    # followed only once the real tree is walked, so a file reached both ways keeps its real
    # path as its id, and a link back up the tree is a loop, not a second copy of the tree.
    Item = tuple[str, frozenset[tuple[int, int]]]  # a path and the folders above it
    stack: list[Item] = [("", frozenset({_key(root_stat)}))]
    links: list[Item] = []
    while stack or links:
        if not stack:
            rel, ancestors = links.pop(0)
            if (folder := _visit(walk, root, rel, ancestors)) is not None:
                stack.append((rel, ancestors | {folder}))
            continue
        rel, ancestors = stack.pop()
        try:
            names = sorted(os.listdir(root / rel))
        except OSError as e:
            walk.skip(rel or ".", "unreadable_folder", e.strerror or str(e))
            continue
        for name in names:
            child = _join(rel, name)
            if os.path.islink(root / child):
                links.append((child, ancestors))
            elif (folder := _visit(walk, root, child, ancestors)) is not None:
                stack.append((child, ancestors | {folder}))
    walk.discovery.found.sort(key=lambda f: f.track_id)
    return walk.discovery


def _visit(
    walk: _Walk, root: Path, rel: str, ancestors: frozenset[tuple[int, int]]
) -> tuple[int, int] | None:
    """Keep or skip the file at ``rel``; a folder to walk returns its inode key."""
    path = root / rel
    try:
        st = path.stat()  # follows symbolic links
    except OSError as e:
        if e.errno == errno.ELOOP:
            walk.skip(rel, "symlink_loop", "a symbolic link that points back at itself")
        elif path.is_symlink():
            walk.skip(rel, "broken_symlink", f"points at {os.readlink(path)!r}, which is missing")
        else:
            walk.skip(rel, "unreadable", e.strerror or str(e))
        return None
    key = _key(st)
    if stat.S_ISDIR(st.st_mode):
        if key in walk.excluded:
            walk.skip(rel, "output_folder", "the run's output folder is not read as input")
        elif key in ancestors:
            walk.skip(rel, "symlink_loop", "a link to a folder that contains it")
        elif key in walk.folders:
            walk.skip(rel, "duplicate_folder", f"the same folder as {walk.folders[key]!r}")
        else:
            walk.folders[key] = rel
            return key
        return None
    if not stat.S_ISREG(st.st_mode):
        walk.skip(rel, "not_a_regular_file", "a device, socket or pipe")
        return None
    if st.st_size == 0:
        walk.skip(rel, "empty_file", "zero bytes")
        return None
    if key in walk.files:
        walk.skip(rel, "duplicate_file", f"the same file as {walk.files[key]!r} (a link)")
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as e:
        walk.skip(rel, "unreadable", e.strerror or str(e))
        return None
    kind, what = sniff(head)
    if kind == "probe":
        audio, why = _has_audio_stream(str(path))
        kind, what = ("probed", "") if audio else (None, f"{what}: {why}")
    if kind is None:
        suffix = Path(rel).suffix.lower()
        if suffix in AUDIO_SUFFIXES:
            walk.skip(rel, "not_audio_despite_name", f"named {suffix} but the content is {what}")
        else:
            walk.skip(rel, "not_audio", what)
        return None
    _keep(walk, root, rel, kind, key)
    return None


def _keep(walk: _Walk, root: Path, rel: str, kind: str, key: tuple[int, int]) -> None:
    audio_path = str(root / rel)
    if audio_path != audio_path.rstrip():
        walk.skip(
            rel,
            "unsupported_name",
            "the name ends in a space, which a catalog cannot hold; rename the file",
        )
        return
    track_id = _track_id(rel)
    if not track_id or track_id in walk.track_ids:
        walk.skip(rel, "duplicate_track_id", f"its id {track_id!r} is another file's too")
        return
    walk.track_ids.add(track_id)
    walk.files[key] = rel
    walk.discovery.found.append(FoundAudio(track_id, audio_path, kind))


# --- the catalog -------------------------------------------------------------------------


def _tag_text(value: str | None) -> str | None:
    """A tag as one line of catalog text: control characters become spaces."""
    if not value:
        return None
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in value)
    return " ".join(text.split()) or None


def read_tags(path: str) -> tuple[str | None, str | None]:
    """The title and artist tags of an audio file (container or first audio stream), or None
    each; a file FFmpeg cannot open has none."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as container:
            tags = {k.lower(): v for k, v in container.metadata.items()}
            if container.streams.audio:  # Ogg and Opus keep their tags in the stream
                stream_tags = container.streams.audio[0].metadata.items()
                tags = {k.lower(): v for k, v in stream_tags} | tags
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return None, None
    return _tag_text(tags.get("title")), _tag_text(tags.get("artist"))


def with_tags(found: list[FoundAudio]) -> list[FoundAudio]:
    """``found`` with title and artist from each file's tags (FFmpeg opens every file)."""
    tagged = []
    for f in found:
        title, artist = read_tags(f.audio_path)
        tagged.append(dataclasses.replace(f, title=title, artist=artist))
    return tagged


def catalog_bytes(found: list[FoundAudio]) -> bytes:
    """The catalog CSV of ``found``, UTF-8, with empty work_id (and title and artist unless
    read from tags) to fill in.

    ``audio_path`` keeps the bytes of a name that is not UTF-8, as the reader expects."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CATALOG_COLUMNS)
    for f in found:
        writer.writerow([f.track_id, f.audio_path, "", f.title or "", f.artist or ""])
    return text.getvalue().encode("utf-8", "surrogateescape")


def skipped_bytes(skipped: list[Skipped]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("path", "reason", "detail"))
    writer.writerows((s.path, s.reason, s.detail) for s in skipped)
    return text.getvalue().encode("utf-8", "surrogateescape")


def require_audio(discovery: Discovery) -> None:
    """Stop with one line naming the folder when it holds no audio at all."""
    if not discovery.found:
        raise DiscoveryError(
            f"{discovery.root}: no audio files found in this folder or below it (skipped "
            f"{len(discovery.skipped)}: {discovery.describe_skipped()}); pass the folder that "
            "holds your music, or a catalog CSV"
        )


def write_catalog(discovery: Discovery, target: Path, skipped_target: Path | None = None) -> None:
    """Write the catalog (and the list of skipped files) atomically."""
    atomic_write_bytes(target, catalog_bytes(discovery.found))
    if skipped_target is not None:
        atomic_write_bytes(skipped_target, skipped_bytes(discovery.skipped))


def commit_catalog(
    discovery: Discovery, out: OutputDir
) -> tuple[dict[str, str | int], list[CatalogEntry]]:
    """Write the folder's catalog and its skipped files into the output (a folder or an object
    store prefix), so the next run on the folder resumes by the same ids: the catalog's record
    for the manifest, and its entries read back as any catalog is read."""
    catalog, skipped = catalog_bytes(discovery.found), skipped_bytes(discovery.skipped)
    record = out.commit_file(INPUT_CATALOG, lambda path: atomic_write_bytes(path, catalog))
    out.commit_file(INPUT_SKIPPED, lambda path: atomic_write_bytes(path, skipped))
    with out.local_copy(INPUT_CATALOG) as local:
        entries = read_catalog(local)
    where = join(out.location, INPUT_CATALOG)
    where = where if is_url(where) else str(Path(where).absolute())
    return {"path": where, "folder": str(discovery.root)} | record, entries

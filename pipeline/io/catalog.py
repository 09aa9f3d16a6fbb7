"""Read and validate the catalog CSV.

Columns: ``track_id`` and ``audio_path`` are required; ``work_id``, ``title``, ``artist`` and
``language`` are optional (``language``, a Whisper code, is the language the track is decoded
in); other columns are ignored. A UTF-8 BOM and CRLF line ends are accepted. Catalog errors
stop the run before any work, naming the line, because a wrong catalog would silently waste a
cluster.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from pipeline.errors import UserError
from pipeline.languages import unknown_language
from pipeline.records import CatalogEntry

REQUIRED_COLUMNS = ("track_id", "audio_path")
OPTIONAL_COLUMNS = ("work_id", "title", "artist", "language")


class CatalogError(UserError, ValueError):
    """The catalog cannot be used as it is; the message names the file and line."""


_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of undecodable bytes


def _resolve(audio_path: str, base_dir: Path) -> str:
    if "://" in audio_path:  # an fsspec URL such as s3://bucket/key.mp3
        return audio_path
    path = Path(audio_path).expanduser()
    return str(path if path.is_absolute() else (base_dir / path).absolute())


def _check_text(values: dict[str, str], where: str) -> None:
    """Ids and metadata must be UTF-8: a Latin-1 "é" would otherwise become an escape code
    in every output table. Only ``audio_path`` may hold bytes of another encoding."""
    for column in ("track_id", *OPTIONAL_COLUMNS):
        if _NOT_UTF8.search(values.get(column) or ""):
            raise CatalogError(
                f"{where}: {column} is not UTF-8 text (a catalog saved as Latin-1 or "
                "Windows-1252?); re-save it as UTF-8, e.g. "
                "iconv -f latin1 -t utf-8 catalog.csv > catalog-utf8.csv"
            )


def read_catalog(path: Path) -> list[CatalogEntry]:
    """Every row of the catalog in file order, relative paths resolved against its folder."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: catalog not found; pass --input path/to/catalog.csv")
    entries: list[CatalogEntry] = []
    seen: dict[str, int] = {}
    # surrogateescape: a path in another encoding still names the same bytes on disk.
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
        reader = csv.reader(f, strict=True)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise CatalogError(f"{path}: the catalog is empty; it needs a header line") from None
        except csv.Error as e:
            raise CatalogError(f"{path}:1: malformed header ({e})") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise CatalogError(
                f"{path}:1: missing required column(s) {', '.join(missing)}; "
                f"the header must name {', '.join(REQUIRED_COLUMNS)}"
            )
        try:
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise CatalogError(
                        f"{path}:{line}: expected {len(header)} fields, found {len(row)}; "
                        "quote values that contain commas"
                    )
                values = {h: cell.strip() for h, cell in zip(header, row, strict=False)}
                _check_text(values, f"{path}:{line}")
                track_id = values["track_id"]
                if not track_id:
                    raise CatalogError(f"{path}:{line}: empty track_id")
                if track_id in seen:
                    raise CatalogError(
                        f"{path}:{line}: duplicate track_id {track_id!r} "
                        f"(first on line {seen[track_id]})"
                    )
                if not values["audio_path"]:
                    raise CatalogError(f"{path}:{line}: empty audio_path for {track_id!r}")
                if values.get("language") and (problem := unknown_language(values["language"])):
                    raise CatalogError(f"{path}:{line}: {track_id!r}: {problem}")
                seen[track_id] = line
                optional = {c: values.get(c) or None for c in OPTIONAL_COLUMNS}
                entries.append(
                    CatalogEntry(
                        track_id=track_id,
                        audio_path=_resolve(values["audio_path"], path.parent),
                        line=line,
                        **optional,
                    )
                )
        except csv.Error as e:
            raise CatalogError(f"{path}:{reader.line_num}: malformed row ({e})") from None
    if not entries:
        raise CatalogError(f"{path}: the catalog has a header but no tracks")
    return entries

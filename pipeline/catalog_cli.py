"""``pipeline catalog DIR --output catalog.csv``: a catalog of a folder of music to edit.

The same catalog ``pipeline run extract --input DIR`` makes and keeps in its output folder,
with empty work_id, title and artist columns for the user to fill in (``--tags``: title and
artist from the files' tags).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.io.discover import (
    Discovery,
    DiscoveryError,
    discover_audio,
    require_audio,
    with_tags,
)
from pipeline.io.discover import write_catalog as write_folder_catalog

EXAMPLES_PER_REASON = 3


def skipped_lines(discovery: Discovery, indent: str = "  ") -> list[str]:
    """Per reason, its count and the first few files, for the terminal."""
    by_reason: dict[str, list[str]] = {}
    for s in discovery.skipped:
        by_reason.setdefault(s.reason, []).append(f"{s.path} ({s.detail})")
    lines = []
    for reason, n in sorted(discovery.skipped_counts().items(), key=lambda i: (-i[1], i[0])):
        examples = by_reason[reason][:EXAMPLES_PER_REASON]
        more = f"; and {n - len(examples)} more" if n > len(examples) else ""
        lines.append(f"{indent}{n:>5}  {reason}: {'; '.join(examples)}{more}")
    return lines


def _catalog(args: argparse.Namespace) -> int:
    output: Path = args.output
    if output.is_dir():
        raise DiscoveryError(f"--output {output} is a folder; name the catalog file to write")
    if output.exists() and not args.force:
        raise DiscoveryError(
            f"--output {output} already exists (your edits?); pass --force to replace it, "
            "or name another file"
        )
    discovery = discover_audio(args.folder, exclude=())
    require_audio(discovery)
    if args.tags:
        discovery.found = with_tags(discovery.found)
    write_folder_catalog(discovery, output)
    lines = [f"catalog     {output}  ({len(discovery.found)} tracks from {discovery.root})"]
    if args.tags:
        titles = sum(f.title is not None for f in discovery.found)
        artists = sum(f.artist is not None for f in discovery.found)
        lines.append(f"tags        title for {titles}, artist for {artists} track(s)")
    lines += [
        f"skipped     {len(discovery.skipped)} file(s): {discovery.describe_skipped()}",
        *skipped_lines(discovery),
        "next        fill in work_id (the song each track is a version of), title, artist;",
        f"            then: pipeline run extract --input {output} --output features",
    ]
    print("\n".join(lines))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``pipeline catalog``."""
    p = commands.add_parser(
        "catalog", help="write a catalog CSV of the audio files in a folder, to edit"
    )
    p.add_argument("folder", type=Path, help="folder of music, read recursively")
    p.add_argument(
        "--output", type=Path, default=Path("catalog.csv"), help="CSV to write (catalog.csv)"
    )
    p.add_argument("--force", action="store_true", help="replace --output if it exists")
    p.add_argument(
        "--tags",
        action="store_true",
        help="fill title and artist from the files' tags (opens every file with FFmpeg)",
    )
    p.set_defaults(handler=_catalog)

"""``report.html``: what a run did, as one static page in its output folder.

The page is rebuilt from the folder's own files after every extract, train or evaluate run,
so a resumed run reports the whole output, not only its own part: the extraction sections when
the folder holds a manifest, the training sections when it holds a run's ``config.json``, the
metrics table when it holds evaluate outputs. No server, script or network: plots are inline
SVG.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pipeline.io.atomic import atomic_write_bytes
from pipeline.io.output_dir import REPORT_FILE
from pipeline.report import html

__all__ = ["REPORT_FILE", "write_report", "write_report_at"]


def report_sections(folder: Path) -> list[str]:
    # Here, not at the top: the CLI imports this package, and loads pyarrow and torch only
    # inside the command that needs them.
    from pipeline.io.output_dir import MANIFEST
    from pipeline.io.run_dir import CONFIG_FILE
    from pipeline.report.evaluate import metrics_files, metrics_section
    from pipeline.report.extract import extract_sections
    from pipeline.report.train import train_sections

    sections = []
    if (folder / MANIFEST).is_file():
        sections += extract_sections(folder)
    if (folder / CONFIG_FILE).is_file():
        sections += train_sections(folder)
    if files := metrics_files(folder):
        sections.append(metrics_section(files))
    return sections


def write_report(folder: Path, shown_as: str | None = None) -> Path:
    """Rewrite ``folder/report.html`` from what the folder holds now; return its path.
    ``shown_as`` names the folder in the header instead (the URL of a scratch copy)."""
    folder = Path(folder)
    written = datetime.now(UTC).isoformat(timespec="seconds")
    where = shown_as or folder.absolute()
    intro = [html.paragraph(f"{where}, report written {written}.", note=True)]
    page = html.document(f"Run report: {folder.name}", intro, report_sections(folder))
    target = folder / REPORT_FILE
    atomic_write_bytes(target, page.encode())
    return target


def write_report_at(location: Path | str) -> Path | str:
    """Rewrite ``location``'s ``report.html`` from what it holds now; its path or URL. For a
    URL the report is built on a local scratch copy, then uploaded; its header names the URL."""
    from pipeline.io.object_store import is_url, join, report_copy

    if not is_url(location):
        return write_report(Path(location))
    with report_copy(str(location)) as local:
        write_report(local, shown_as=str(location))
    return join(location, REPORT_FILE)

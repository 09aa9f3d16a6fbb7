"""The evaluation section of a run report: one row per metrics file ``pipeline run evaluate``
wrote into the folder, its figures as the file holds them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.report import html

OTHER_JSON = frozenset({"manifest.json", "plan.json", "config.json", "split.json"})
METRIC_KEYS = (
    "catalog_tracks",
    "embedded_tracks",
    "missing_tracks",
    "queries",
    "map",
    "map_at_10",
    "mr1",
    "hr_at_1",
    "hr_at_10",
    "arp",
)


def is_metrics(document: Any) -> bool:
    return isinstance(document, dict) and {"map", "random_map", "queries"} <= document.keys()


def metrics_files(folder: Path) -> dict[str, dict[str, Any]]:
    """The evaluate outputs in ``folder``, by file name."""
    found = {}
    for path in sorted(folder.glob("*.json")):
        if path.name in OTHER_JSON:
            continue
        document = json.loads(path.read_text())
        if is_metrics(document):
            found[path.name] = document
    return found


def _compared(metrics: dict[str, Any]) -> str:
    fusion = metrics.get("fusion")
    name = Path(metrics["embeddings"]).name
    if fusion:
        name += f" + {fusion['weight']} x {Path(fusion['embeddings']).name}"
    return name


def metrics_section(files: dict[str, dict[str, Any]]) -> str:
    rows = [
        (
            file_name,
            _compared(m),
            m.get("scoring", "-"),
            "-" if m.get("holdout") is None else Path(m["holdout"]).name,
            *("-" if m.get(key) is None else m[key] for key in (*METRIC_KEYS, "random_map")),
        )
        for file_name, m in files.items()
    ]
    headers = ["file", "embeddings", "scoring", "held out of", *METRIC_KEYS, "random_map"]
    parts = [
        html.paragraph(
            "Every catalog track with another version of its work queries all other tracks "
            "(with --holdout, only the run's test works query); a track without a vector ranks "
            "last. random_map is the MAP a random ranking would get; '-': not measured (a file "
            "written before these counts, or no test work with two versions)."
        ),
        html.table(headers, rows, "metrics"),
    ]
    return html.section("evaluation", "Evaluation metrics", parts)

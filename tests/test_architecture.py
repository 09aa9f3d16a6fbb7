"""Every module of ``pipeline/`` has a layer: in the import contracts ``lint-imports`` checks,
and in docs/architecture.md, which says what each layer is for. A module in neither would
escape the layer rule without anyone noticing."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return [name.strip() for layer in layers for name in layer.replace(":", "|").split("|")]


def _top_level_modules() -> list[str]:
    package = ROOT / "pipeline"
    files = [p.stem for p in package.glob("*.py") if p.stem != "__init__"]
    folders = [p.name for p in package.iterdir() if (p / "__init__.py").is_file()]
    return sorted(f"pipeline.{name}" for name in files + folders)


def test_every_module_is_in_a_layer_of_the_contracts() -> None:
    assert set(_top_level_modules()) - set(_layers()) == set()


def test_every_module_is_named_in_the_architecture_page() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for module in _top_level_modules():
        name = module.removeprefix("pipeline.")
        assert f"`{name}.py`" in page or f"`{name}/`" in page, name

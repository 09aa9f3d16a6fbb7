"""The README's commands exist: every ``pipeline ...`` line of its code blocks (and of the
Makefile) parses with the real CLI parser and names only options that parser defines."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from pipeline.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PROGRAM = re.compile(r"^(?:\S*/)?pipeline(?:\s|$)")  # pipeline, .venv/bin/pipeline, $(VENV)/...


def code_lines(markdown: str) -> list[str]:
    """The lines inside fenced code blocks, with backslash continuations joined."""
    lines, inside, pending = [], False, ""
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    return lines


def pipeline_commands(lines: list[str]) -> list[list[str]]:
    """Each ``pipeline`` invocation as its arguments, comments dropped."""
    commands = []
    for line in lines:
        words = shlex.split(line.strip(), comments=True)
        if words and PROGRAM.match(" ".join(words)):
            commands.append(words[1:])
    return commands


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of ``parser`` and of its subcommands, all the way down."""
    found = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= option_strings(sub)
    return found


def readme_commands() -> list[list[str]]:
    return pipeline_commands(code_lines(README.read_text(encoding="utf-8")))


def makefile_commands() -> list[list[str]]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    return pipeline_commands([line for line in makefile if line.startswith("\t")])


def test_the_readme_shows_commands_and_stays_short() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300, "the README serves who runs the job: the rest to docs/"
    assert len(readme_commands()) >= 10
    assert "make example" in text and "make test" in text
    targets = re.findall(r"^([a-z]+):", (ROOT / "Makefile").read_text(), flags=re.M)
    assert {"example", "test"} <= set(targets)


@pytest.mark.parametrize(
    "arguments", readme_commands() + makefile_commands(), ids=lambda a: " ".join(a)[:60]
)
def test_every_pipeline_command_parses(arguments: list[str]) -> None:
    parser = _parser()
    try:
        parser.parse_args(arguments)
    except SystemExit as e:  # argparse exits 2 on an unknown command or option
        pytest.fail(f"`pipeline {' '.join(arguments)}` does not parse (exit {e.code})")
    known = option_strings(parser)
    flags = {word.split("=", 1)[0] for word in arguments if word.startswith("--")}
    assert flags <= known, f"not options of pipeline (abbreviated?): {sorted(flags - known)}"


def test_continuations_and_comments_are_followed() -> None:
    block = "```bash\npipeline run extract --input a.csv \\\n    --output out  # a comment\n```\n"
    assert pipeline_commands(code_lines(block)) == [
        ["run", "extract", "--input", "a.csv", "--output", "out"]
    ]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_to_docs_resolve() -> None:
    """Every relative link of the README and of docs/ names a file, and a heading there."""
    broken = []
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for link in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", link):
                continue
            path, _, anchor = link.partition("#")
            target = page.parent / path if path else page
            if not target.exists():
                broken.append(f"{page.name}: {link} (no such file)")
            elif anchor and target.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", target.read_text(encoding="utf-8"), re.M)
                if anchor not in {_slug(h) for h in headings}:
                    broken.append(f"{page.name}: {link} (no such heading)")
    assert not broken, "\n".join(broken)

"""The Dockerfiles and the compose file, checked without a Docker engine: hadolint passes, and
everything they copy, install or run exists in the project with the arguments they give it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from pipeline.cli import _parser as pipeline_parser
from tests.conftest import REPO

DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
BIN = Path(sys.executable).parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            result.append((keyword.upper(), rest.strip()))
            pending = ""
    return result


def exec_form(arguments: str) -> list[str]:
    assert arguments.startswith("["), f"use the exec form: {arguments}"
    return yaml.safe_load(arguments)  # a JSON array is YAML too


def env_of(dockerfile: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in instructions(dockerfile):
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(rest))
    return env


def test_there_are_a_cpu_and_a_gpu_image() -> None:
    assert [p.name for p in DOCKERFILES] == ["cpu.Dockerfile", "gpu.Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copied_file_exists_and_the_project_installs_from_its_own_files(
    dockerfile: Path,
) -> None:
    steps = instructions(dockerfile)
    copied: set[str] = set()
    for keyword, rest in steps:
        if keyword == "COPY":
            *sources, destination = [a for a in shlex.split(rest) if not a.startswith("--")]
            for source in sources:
                assert (REPO / source).exists(), f"{dockerfile.name}: COPY {source}"
            copied.update(sources)
            if destination.endswith(".py"):
                copied.add(destination)
    assert {"requirements.lock", "pyproject.toml", "pipeline", "schemas"} <= copied
    runs = " ".join(rest for keyword, rest in steps if keyword == "RUN")
    assert "pip install -r requirements.lock" in runs
    assert "pip install --no-deps -e ." in runs  # schemas/ are read beside the package
    assert [rest for keyword, rest in steps if keyword == "USER"] == ["1000:1000"]  # not root
    health = [rest for keyword, rest in steps if keyword == "HEALTHCHECK"]
    assert len(health) == 1
    command = exec_form(health[0].split(" CMD ", 1)[1])
    assert command[0] == "python" and command[1] in copied


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_baked_model_command_assembles_the_default_whisper(
    dockerfile: Path, tmp_path: Path
) -> None:
    code = env_of(dockerfile)["BAKE_MODEL"]
    env = {**os.environ, "PIPELINE_CACHE_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    model_dir = Path(result.stdout.strip())
    assert model_dir.parent == tmp_path and (model_dir / "model.bin").is_file()
    healthy = subprocess.run([sys.executable, str(DOCKER / "healthcheck.py")], env=env, timeout=120)
    assert healthy.returncode == 0  # with no HEALTH_URL: the baked model is there
    empty = {**os.environ, "PIPELINE_CACHE_DIR": str(tmp_path / "nothing")}
    unhealthy = subprocess.run([sys.executable, str(DOCKER / "healthcheck.py")], env=empty)
    assert unhealthy.returncode == 1


def test_the_health_check_asks_a_dask_server(tmp_path: Path) -> None:
    from distributed import LocalCluster

    def check(url: str) -> int:
        env = {**os.environ, "HEALTH_URL": url}
        return subprocess.run([sys.executable, str(DOCKER / "healthcheck.py")], env=env).returncode

    with LocalCluster(n_workers=0, dashboard_address="127.0.0.1:0") as cluster:
        url = cluster.dashboard_link.replace("/status", "/health")
        assert check(url) == 0
    assert check(url) == 1  # the scheduler is gone


def dask_flags_exist(argv: list[str]) -> None:
    """``dask scheduler|worker`` with these flags: each flag is in that command's help."""
    help_text = subprocess.run(
        [str(BIN / "dask"), argv[0], "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in (a for a in argv[1:] if a.startswith("--")):
        assert f"{flag} " in help_text or f"{flag}," in help_text, f"dask {argv[0]} {flag}"


def image_entrypoint(dockerfile: Path) -> tuple[list[str], list[str]]:
    steps = dict(instructions(dockerfile))
    return exec_form(steps["ENTRYPOINT"]), exec_form(steps.get("CMD", "[]"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_image_s_default_command_exists(dockerfile: Path) -> None:
    entrypoint, command = image_entrypoint(dockerfile)
    if entrypoint == ["pipeline"]:
        assert "pipeline" in PROJECT["scripts"]
        with pytest.raises(SystemExit) as shown:
            pipeline_parser().parse_args(command)  # --help: prints and exits 0
        assert shown.value.code == 0
    else:
        assert entrypoint == ["dask"]
        dask_flags_exist(command)


def test_compose_starts_a_scheduler_two_workers_and_a_one_shot_extract(tmp_path: Path) -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    default = [s for s, spec in services.items() if "profiles" not in spec]
    assert sorted(default) == ["extract", "scheduler", "worker-1", "worker-2"]
    assert services["extract"]["restart"] == "no"
    for name, spec in services.items():
        dockerfile = (DOCKER / spec["build"]["context"] / spec["build"]["dockerfile"]).resolve()
        assert dockerfile in DOCKERFILES, name
        entrypoint = spec.get("entrypoint") or image_entrypoint(dockerfile)[0]
        if entrypoint == ["pipeline"]:
            args = pipeline_parser().parse_args(spec["command"])
            assert (args.command, args.job, getattr(args, "run.scheduler")) == (
                "run",
                "extract",
                "tcp://scheduler:8786",
            )
        else:
            assert entrypoint == ["dask"], name
            dask_flags_exist(spec["command"])
        if "HEALTH_URL" in spec.get("environment", {}):
            port = spec["environment"]["HEALTH_URL"].split(":")[2].split("/")[0]
            assert f":{port}" in spec["command"], name  # the dashboard it checks is served
    assert "--resources" in services["worker-gpu"]["command"]


def docs_docker_commands(page: str, anchor: str) -> list[list[str]]:
    """The commands of ``page``'s first bash block after ``anchor``, continuations joined."""
    text = (REPO / page).read_text().split(anchor, 1)[1]
    block = text.split("```bash\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    commands = []
    for line in block.splitlines():
        for part in line.split("#", 1)[0].split("&&"):
            if part.strip():
                commands.append(shlex.split(part))
    return commands


@pytest.mark.parametrize(
    ("page", "anchor", "verbs"),
    [
        ("docs/cluster.md", "**The images**", {"build", "up", "run", "down"}),
        ("README.md", "Docker images for the driver", {"build", "up"}),
    ],
)
def test_the_docs_docker_commands_match_the_files(page: str, anchor: str, verbs: set[str]) -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    images = {
        (DOCKER / s["build"]["context"] / s["build"]["dockerfile"]).resolve(): s["image"]
        for s in services.values()
    }
    used = set()
    for argv in docs_docker_commands(page, anchor):
        if argv[:2] == ["docker", "build"]:
            dockerfile = (REPO / argv[argv.index("-f") + 1]).resolve()
            assert images[dockerfile] == argv[argv.index("-t") + 1]  # the tag compose runs
            used.add("build")
        elif argv[:2] == ["docker", "compose"]:
            assert (REPO / argv[argv.index("-f") + 1]).resolve() == DOCKER / "compose.yaml"
            if "--profile" in argv:
                profile = argv[argv.index("--profile") + 1]
                assert any(profile in s.get("profiles", []) for s in services.values())
            verb = next(a for a in argv if a in ("up", "run", "down"))
            rest = [a for a in argv[argv.index(verb) + 1 :] if a not in ("--build", "-d", "--rm")]
            if verb in ("up", "run"):
                assert rest[0] in services, argv
            if verb == "run":
                pipeline_parser().parse_args(rest[1:])  # exits on an unknown flag
            used.add(verb)
    assert used == verbs

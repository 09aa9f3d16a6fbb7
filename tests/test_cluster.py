"""Cluster mode for real: a ``dask scheduler`` and two ``dask worker`` processes on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client

from pipeline.io.parquet import read_table
from pipeline.worker_memory import WORKER_MALLOC
from tests.conftest import REPO, extract_command, run_extract

pytestmark = pytest.mark.integration
DASK = str(Path(sys.executable).with_name("dask"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _whisper_loads() -> int:
    """How many Whisper models this worker process holds (run on workers by ``client.run``)."""
    from pipeline.models.whisper_runtime import load_whisper

    return load_whisper.cache_info().currsize


class Cluster:
    def __init__(self, worker_resources: list[str | None], log_dir: Path) -> None:
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        port = self.address.rsplit(":", 1)[1]
        self.processes = [
            subprocess.Popen(
                [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
                stdout=subprocess.DEVNULL,
                stderr=open(log_dir / "scheduler.log", "w"),
                start_new_session=True,
            )
        ]
        for i, resources in enumerate(worker_resources):
            args = [
                DASK,
                "worker",
                self.address,
                "--nthreads",
                "1",
                "--no-dashboard",
                "--name",
                f"worker-{i}",
            ]
            if resources:
                args += ["--resources", resources]
            self.processes.append(
                subprocess.Popen(
                    args,
                    cwd=REPO,
                    env=os.environ | {"PYTHONPATH": str(REPO)},  # client.run(tests.* functions)
                    stdout=subprocess.DEVNULL,
                    stderr=open(log_dir / f"worker-{i}.log", "w"),
                    start_new_session=True,
                )
            )
        self.client = Client(self.address, timeout=60)
        self.client.wait_for_workers(len(worker_resources), timeout=120)

    def close(self) -> None:
        self.client.close()
        for p in self.processes:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator:
    clusters: list[Cluster] = []

    def make(worker_resources: list[str | None]) -> Cluster:
        clusters.append(Cluster(worker_resources, tmp_path))
        return clusters[-1]

    yield make
    for c in clusters:
        c.close()


def _same_rows(a: Path, b: Path) -> None:
    for name in ("tracks", "segments"):
        assert read_table(a / name, name).to_pylist() == read_table(b / name, name).to_pylist()


def test_scheduler_mode_matches_local_cluster_and_routes_whisper_to_gpu_workers(
    cluster_factory, example_dir: Path, example_features: Path, tmp_path: Path
) -> None:
    cluster = cluster_factory(["GPU=1", None])
    output = tmp_path / "features"
    result = run_extract(
        example_dir / "catalog.csv",
        output,
        "--partition-size",
        "3",
        "--scheduler",
        cluster.address,
        "--set",
        "run.whisper_resources={GPU: 1}",
    )
    assert result.returncode == 0, result.stderr
    _same_rows(output, example_features)
    loads = cluster.client.run(_whisper_loads)
    by_name = {
        info["name"]: loads[addr]
        for addr, info in cluster.client.scheduler_info()["workers"].items()
    }
    assert by_name == {"worker-0": 1, "worker-1": 0}  # only the GPU worker ran Whisper


def test_worker_killed_mid_whisper_the_run_still_completes_once(
    cluster_factory, example_dir: Path, example_features: Path, tmp_path: Path
) -> None:
    cluster = cluster_factory([None, None])
    output = tmp_path / "features"
    process = subprocess.Popen(
        extract_command(
            example_dir / "catalog.csv",
            output,
            "--partition-size",
            "3",
            "--scheduler",
            cluster.address,
        ),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    victim = None
    while victim is None:
        assert time.monotonic() < deadline and process.poll() is None
        loads = cluster.client.run(_whisper_loads)
        victim = next((addr for addr, n in loads.items() if n), None)
        time.sleep(0.5)
    pid = cluster.client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)  # the nanny restarts it; Dask re-runs its tasks
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    assert "workers     1 lost" in stdout
    tracks = read_table(output / "tracks", "tracks").to_pylist()
    assert sorted(t["track_id"] for t in tracks) == sorted(
        t["track_id"] for t in read_table(example_features / "tracks", "tracks").to_pylist()
    )
    _same_rows(output, example_features)
    assert not list(output.rglob(".tmp-*"))


WORKER_MALLOC_ENV = """
import json
import os
from distributed import Client, LocalCluster
from pipeline.config import RunConfig
from pipeline.runner import dask_client
def malloc_environ():
    return {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
if os.environ.get("DASK_CONFIG"):  # a plain Nanny, as a remote `dask worker` starts one
    with LocalCluster(n_workers=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            seen = client.run(malloc_environ)
else:
    with dask_client(RunConfig(n_workers=1), gpu=False) as (client, _):
        seen = client.run(malloc_environ)
print(json.dumps(list(seen.values())))
"""


def _worker_malloc_environ(**extra: str) -> list[dict[str, str]]:
    """The ``MALLOC_`` variables a worker sees, from a fresh process: a Nanny writes its
    worker environment into its own process's too."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    result = subprocess.run(
        [sys.executable, "-c", WORKER_MALLOC_ENV],
        env=env | extra,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_local_workers_run_with_our_malloc_settings_not_dasks() -> None:
    assert _worker_malloc_environ() == [WORKER_MALLOC]


def test_the_images_dask_config_gives_remote_workers_the_same_settings(tmp_path: Path) -> None:
    (tmp_path / "dask.yaml").write_bytes((REPO / "docker" / "dask.yaml").read_bytes())
    assert _worker_malloc_environ(DASK_CONFIG=str(tmp_path)) == [WORKER_MALLOC]

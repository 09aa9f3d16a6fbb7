"""The scheduler plugin that counts task retries, on a real LocalCluster with a task that fails
once and a task that fails for good."""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from pipeline.retries import retry_counts, start_counting, stop_counting


def fails_first_time(flag: Path) -> int:
    """Raise on the first call, succeed on the retry: what a flaky disk or network does."""
    if not flag.exists():
        flag.touch()
        raise OSError("first try fails")
    return 1


def always_fails() -> int:
    raise ValueError("broken for good")


def test_retries_are_counted_per_kind_of_task(tmp_path: Path) -> None:
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as c,
        Client(c) as client,
    ):
        start_counting(client, "tok")
        flaky = [
            client.submit(
                fails_first_time, tmp_path / f"flag-{i}", key=f"prepare-tok-{i}", retries=2
            )
            for i in range(2)
        ]
        assert client.gather(flaky) == [1, 1]
        broken = client.submit(always_fails, key="write-tok-0", retries=1)
        with pytest.raises(ValueError, match="broken for good"):
            broken.result()
        other = client.submit(
            fails_first_time, tmp_path / "flag-x", key="prepare-other-0", retries=1
        )
        assert other.result() == 1  # another run's key: not counted
        assert retry_counts(client, "tok") == {"prepare": 2, "write": 1}
        stop_counting(client, "tok")

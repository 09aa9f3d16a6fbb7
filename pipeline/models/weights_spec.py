"""A trained model as the runner hands it to the workers: its kind, its run folder and the
checkpoint's sha256. The spec is a few bytes in the task graph, where the model would be
megabytes; each worker loads the weights itself, once, and refuses a checkpoint that changed
after the run checked it (a run folder still training, or replaced under the same name)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.io.output_dir import file_record
from pipeline.io.run_dir import (
    RunFolderError,
    load_checkpoint,
    read_run_config,
    run_checkpoint,
    run_copy,
)

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class WeightsSpec:
    kind: str  # the run kind its config.json names: livi, singing
    run_dir: str  # a folder or a URL
    checkpoint: str  # the file loaded: best.pt, else last.pt
    bytes: int
    sha256: str

    def record(self) -> dict[str, Any]:
        """What the manifest keeps of the weights: they, not the folder's path, identify it."""
        return {"bytes": self.bytes, "sha256": self.sha256}


def _checked_kind(folder: Path | str, kind: str, named: str, fix: str) -> dict[str, Any]:
    found, values = read_run_config(folder)
    if found != kind:
        raise RunFolderError(f"{named} is a {found} run; {fix}")
    return values


def weights_spec(run_dir: Path | str, kind: str, named: str, fix: str) -> WeightsSpec:
    """The spec of a run folder (or URL) of ``kind``; ``named`` is how the user gave it, and
    ``fix`` what to give instead when it is another kind of run."""
    _checked_kind(run_dir, kind, named, fix)
    with run_copy(run_dir) as folder:
        checkpoint = run_checkpoint(folder)
        record = file_record(checkpoint)
        return WeightsSpec(kind, str(run_dir), checkpoint.name, record["bytes"], record["sha256"])


def load_weights(
    spec: WeightsSpec, build: Callable[[dict[str, Any]], nn.Module], device: str
) -> tuple[nn.Module, dict[str, Any]]:
    """``build(config values)`` with the spec's checkpoint loaded, in eval mode on ``device``,
    and the run's config values."""
    with run_copy(spec.run_dir) as folder:
        values = _checked_kind(folder, spec.kind, spec.run_dir, f"it must be a {spec.kind} run")
        checkpoint = run_checkpoint(folder)
        if file_record(checkpoint)["sha256"] != spec.sha256:
            raise RunFolderError(
                f"{spec.run_dir}: {checkpoint.name} changed after the run checked it "
                f"(sha256 {spec.sha256[:12]}...); run again on a finished run folder"
            )
        model = build(values)
        model.load_state_dict(load_checkpoint(checkpoint)["model"])
    return model.to(device).eval(), values

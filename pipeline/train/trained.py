"""A trained model back from its run folder, for embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipeline.io.run_dir import (
    RunFolderError,
    config_from_dict,
    load_checkpoint,
    read_run_config,
    run_checkpoint,
)
from pipeline.models.livi import LiviConfig, LiviModel
from pipeline.models.singing_detector import DetectorConfig, SingingDetector
from pipeline.train.wealy import WealyConfig, WealyModel

Trained = LiviModel | WealyModel | SingingDetector


def load_run(run_dir: Path, device: torch.device) -> tuple[Trained, dict[str, Any]]:
    """The model of a run folder with its ``best.pt`` (else ``last.pt``) weights, in eval mode."""
    kind, values = read_run_config(run_dir)
    checkpoint = run_checkpoint(run_dir)
    if kind == "livi":
        model: Trained = LiviModel(config_from_dict(LiviConfig, values))
    elif kind == "wealy":
        model = WealyModel(config_from_dict(WealyConfig, values))
    elif kind == "singing":
        model = SingingDetector(config_from_dict(DetectorConfig, values))
    else:
        raise RunFolderError(f"{run_dir}: unknown run kind {kind!r} in its config")
    model.load_state_dict(load_checkpoint(checkpoint)["model"])
    return model.to(device).eval(), {"kind": kind, **values}

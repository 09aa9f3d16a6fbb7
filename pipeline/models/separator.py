"""HTDemucs from a local file: checked before any work, loaded once per process.

No machine here reaches a model hub, and a cluster job should not either: the weights are a
file the user gives (``--separator-weights``), in the format demucs itself saves
(``demucs.states.save_with_checksum`` of a serialized model: class, arguments and state).
Loading one unpickles its class, so give it files you trust, like any PyTorch checkpoint.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import UserError

if TYPE_CHECKING:
    import torch

# The released htdemucs (4 sources, 44.1 kHz stereo), as demucs's own repository lists it.
HTDEMUCS_FILE = "955717e8-8726e21a.th"
HTDEMUCS_URL = f"https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/{HTDEMUCS_FILE}"
_FIX = f"download htdemucs's {HTDEMUCS_FILE} from {HTDEMUCS_URL} and pass its path"
_HASH_CHUNK = 1 << 22
# torch.save writes a zip archive; files of torch < 1.6 are a bare pickle (protocol 2+).
_CHECKPOINT_STARTS = (b"PK\x03\x04", b"\x80")


class SeparatorError(UserError, RuntimeError):
    """The separation weights are missing or are not a demucs model with a vocal source."""


def weights_path(weights: str | None) -> Path:
    """The weights file, or one error naming the file expected and where it comes from.

    Cheap (no torch): the CLI calls it before importing anything heavy, so a missing file, an
    HTML error page or an empty download fails at once; `load_separator` checks the rest.
    """
    if not weights:
        raise SeparatorError(f"--separator htdemucs needs --separator-weights PATH; {_FIX}")
    path = Path(weights).expanduser().absolute()
    if not path.is_file():
        raise SeparatorError(f"--separator-weights {path}: no such file; {_FIX}")
    with open(path, "rb") as f:
        start = f.read(4)
    if not start.startswith(_CHECKPOINT_STARTS):
        raise SeparatorError(
            f"--separator-weights {path}: not a demucs model file (no PyTorch checkpoint, "
            f"starts {start!r}); {_FIX}"
        )
    return path


@functools.cache
def load_separator(weights: str | None, device: str = "cpu") -> torch.nn.Module:
    """The demucs model in ``weights``, in eval mode on ``device``."""
    import torch  # here, not at the top: the CLI checks weights_path before loading torch
    from demucs.states import load_model

    path = weights_path(weights)
    try:
        model = load_model(path)
    except Exception as e:  # noqa: BLE001 - whatever the file is, the fix is the same
        problem = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise SeparatorError(
            f"--separator-weights {path}: not a demucs model file ({problem}); {_FIX}"
        ) from None
    sources = list(getattr(model, "sources", []))
    if "vocals" not in sources:
        raise SeparatorError(
            f"--separator-weights {path}: the model separates {sources}, no 'vocals'; {_FIX}"
        )
    if device == "cuda" and not torch.cuda.is_available():
        raise SeparatorError("--device cuda was given but this worker sees no CUDA device")
    return model.to(device).eval()


@functools.cache
def weights_sha256(path: Path) -> str:
    """What identifies the separator in the manifest: the file's content, not its path."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()

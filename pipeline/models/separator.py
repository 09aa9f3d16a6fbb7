"""HTDemucs from a local file: checked before any work, loaded once per process.

No machine here reaches a model hub, and a cluster job should not either: the weights are a
file the user gives (``--separator-weights``), in the format demucs itself saves
(``demucs.states.save_with_checksum`` of a serialized model: class, arguments and state).
Loading one unpickles it (demucs loads with ``weights_only=False``), and an unpickled file can
run any code: so the file's sha256 must match one the user wrote down (``separate.weights_sha256``
or a ``<weights>.sha256`` file beside it), checked on the very bytes that are then unpickled.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import warnings
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
_SHA256 = re.compile(r"[0-9a-f]{64}")


class SeparatorError(UserError, RuntimeError):
    """The separation weights are missing, untrusted (no sha256, or another one), or not a
    demucs model with a vocal source."""


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


def expected_sha256(path: Path, setting: str | None) -> str:
    """The hash the user trusts: ``separate.weights_sha256``, else ``<weights>.sha256`` (the
    first word, so ``sha256sum``'s whole line works too)."""
    beside = path.with_name(f"{path.name}.sha256")
    if setting:
        expected, where = setting, "separate.weights_sha256"
    elif beside.is_file():
        words = beside.read_text(encoding="utf-8", errors="replace").split()
        expected, where = (words[0] if words else ""), str(beside)
    else:
        raise SeparatorError(
            f"--separator-weights {path}: no sha256 to check it against (demucs unpickles the "
            f"file, which can run code); write it with `sha256sum {path} | cut -d' ' -f1 > "
            f"{beside}` or --set separate.weights_sha256=HASH (docs/vocal-separation.md)"
        )
    expected = expected.strip().lower()
    if not _SHA256.fullmatch(expected):
        raise SeparatorError(f"{where}: {expected!r} is not a sha256 (64 hex digits); rewrite it")
    return expected


def verified_weights(weights: str | None, sha256: str | None = None) -> bytes:
    """The weights file's bytes, once their sha256 matches the trusted one; else one error."""
    path = weights_path(weights)
    expected = expected_sha256(path, sha256)
    data = path.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != expected:
        raise SeparatorError(
            f"--separator-weights {path}: its sha256 {found} is not the trusted {expected}, "
            "so it is not unpickled; download the file again, or write this file's hash if "
            "you trust it (docs/vocal-separation.md)"
        )
    return data


@functools.cache
def load_separator(
    weights: str | None, device: str = "cpu", sha256: str | None = None
) -> torch.nn.Module:
    """The demucs model in ``weights``, in eval mode on ``device``, once its bytes match
    ``sha256`` (``separate.weights_sha256``; None: the ``.sha256`` file beside them)."""
    import torch  # here, not at the top: the CLI checks weights_path before loading torch
    from demucs.states import load_model

    path = weights_path(weights)
    data = verified_weights(weights, sha256)
    try:
        with warnings.catch_warnings():  # demucs silences torch's warning the same way
            warnings.simplefilter("ignore")
            package = torch.load(io.BytesIO(data), "cpu", weights_only=False)
        model = load_model(package)
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

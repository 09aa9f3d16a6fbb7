"""Read the variables of a CTranslate2 ``model.bin``.

CTranslate2 does not expose decoder hidden states, so the decoder is re-run in PyTorch with
the very weights of the model file. The format is defined by ``ctranslate2/specs/model_spec.py``.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

# Order of CTranslate2's DataType enum (include/ctranslate2/types.h).
_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # None: bfloat16


class ModelFileError(ValueError):
    """The file is not a CTranslate2 model this reader understands."""


def _read(f: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ModelFileError("unexpected end of file")
    return struct.unpack(fmt, data)[0]


def _read_string(f: BinaryIO) -> str:
    length = _read(f, "H")
    return f.read(length)[:-1].decode("utf-8")


def _bfloat16_to_float32(raw: bytes, shape: tuple[int, ...]) -> np.ndarray:
    as_uint16 = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
    return as_uint16.view(np.float32).reshape(shape)


def read_model_variables(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """Return the spec name and every variable (aliases resolved) of a ``model.bin``."""
    variables: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        version = _read(f, "I")
        if version not in (5, 6):
            raise ModelFileError(f"{path}: unsupported CTranslate2 binary version {version}")
        spec_name = _read_string(f)
        _read(f, "I")  # spec revision
        for _ in range(_read(f, "I")):
            name = _read_string(f)
            rank = _read(f, "B")
            shape = tuple(_read(f, "I") for _ in range(rank))
            type_id = _read(f, "B")
            num_bytes = _read(f, "I")
            raw = f.read(num_bytes)
            if type_id >= len(_DTYPES):
                raise ModelFileError(f"{path}: unknown data type id {type_id} for {name}")
            dtype = _DTYPES[type_id]
            if dtype is None:
                variables[name] = _bfloat16_to_float32(raw, shape)
            else:
                variables[name] = np.frombuffer(raw, dtype=dtype).reshape(shape)
        for _ in range(_read(f, "I")):
            alias = _read_string(f)
            variables[alias] = variables[_read_string(f)]
    return spec_name, variables

"""What every checkpoint reader provides: an index of tensors read from the file's
metadata alone, and a ``load`` that reads one tensor's bytes when asked.

A reader never reads a tensor it is not asked for, so analysing a checkpoint holds
at most the tensors of one layer at a time (plus what the caller keeps). Every size,
offset and stride that comes from the file is checked against the file before any
memory is allocated for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from simulator.errors import CheckpointError

MAX_NDIM = 32
"""Most dimensions a tensor may have (PyTorch allows 25)."""

BF16 = "bfloat16"
"""Marker dtype name for bfloat16 data (NumPy has no bfloat16; it is widened to float32)."""


def fail(path: str | Path, problem: str, tensor: str | None = None) -> CheckpointError:
    """A :class:`CheckpointError` naming the file and, where known, the tensor."""
    where = f"{path}: tensor {tensor!r}: " if tensor is not None else f"{path}: "
    return CheckpointError(where + problem)


def describe(obj: object, limit: int = 60) -> str:
    """A short, safe description of an object read from a file (type and a clipped repr)."""
    try:
        text = repr(obj)
    except Exception:
        text = "?"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(obj).__name__} {text}"


@dataclass(frozen=True, kw_only=True)
class TensorInfo:
    """One tensor of a file, as its metadata describes it (nothing read yet).

    ``dtype`` is the NumPy dtype of the stored data (or :data:`BF16`), ``None`` when
    the dtype cannot be read (``dtype_name`` says which it was). Sizes in elements.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype | str | None
    dtype_name: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype == BF16 or (
            isinstance(self.dtype, np.dtype) and np.issubdtype(self.dtype, np.floating)
        )

    @property
    def is_numeric(self) -> bool:
        """Real numbers or booleans (what a weight or a mask may be)."""
        return self.is_float or (isinstance(self.dtype, np.dtype) and self.dtype.kind in "biu")


class TensorSource:
    """Base of the readers: ``tensors`` (name -> :class:`TensorInfo`, in file order),
    ``other`` (entries that are not tensors, with a reason), ``warnings``, and ``load``.

    Readers are context managers; ``close`` releases the file.
    """

    format = "?"

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.tensors: dict[str, TensorInfo] = {}
        self.other: list[tuple[str, str]] = []
        self.warnings: list[str] = []

    def load(self, name: str) -> np.ndarray:
        """The tensor's values, in its own shape, as a new native-endian array
        (bfloat16 widened to float32)."""
        info = self.tensors.get(name)
        if info is None:
            raise fail(self.path, "no such tensor in the file", name)
        if info.dtype is None:
            raise fail(self.path, f"unsupported dtype {info.dtype_name}", name)
        try:
            return self._load(info)
        except CheckpointError:
            raise
        except MemoryError:
            raise fail(self.path, f"not enough memory for shape {info.shape}", name) from None
        except Exception as e:  # a corrupt file must never escape as a foreign error
            raise fail(self.path, f"cannot read data ({type(e).__name__}: {e})", name) from None

    def _load(self, info: TensorInfo) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> TensorSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)


def check_shape(path: str, name: str, shape: object) -> tuple[int, ...]:
    """A shape from a file: a list or tuple of at most :data:`MAX_NDIM` integers >= 0."""
    if not isinstance(shape, list | tuple) or len(shape) > MAX_NDIM:
        raise fail(path, f"shape must be a list of at most {MAX_NDIM} integers", name)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise fail(path, f"shape must hold integers >= 0, got {describe(shape)}", name)
    return tuple(shape)


def read_exact(f: BinaryIO, offset: int, nbytes: int, path: str, name: str) -> np.ndarray:
    """``nbytes`` bytes at ``offset`` into a new uint8 array; short reads are an error."""
    buf = np.empty(nbytes, dtype=np.uint8)
    f.seek(offset)
    got = f.readinto(memoryview(buf)) if nbytes else 0
    if got != nbytes:
        raise fail(path, f"file truncated: {nbytes} bytes at offset {offset}, got {got}", name)
    return buf


def to_native(raw: np.ndarray, dtype: np.dtype | str, shape: tuple[int, ...]) -> np.ndarray:
    """Interpret raw bytes (uint8) as ``dtype`` (or bfloat16) in ``shape``, native-endian."""
    if dtype == BF16:
        half = raw.view("<u2")
        out = (half.astype(np.uint32) << 16).view(np.float32)
        return out.reshape(shape)
    arr = raw.view(dtype).reshape(shape)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def file_size(f: BinaryIO) -> int:
    """Size of an open file in bytes."""
    pos = f.tell()
    f.seek(0, 2)
    size = f.tell()
    f.seek(pos)
    return size

"""What every checkpoint reader provides: an index of tensors read from the file's
metadata alone, and a ``load`` that reads one tensor's bytes when asked.

A reader never reads a tensor it is not asked for, so analysing a checkpoint holds
at most the tensors of one layer at a time (plus what the caller keeps). Every size,
offset and stride that comes from the file is checked against the file before any
memory is allocated for it.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from simulator.errors import CheckpointError, PrunesimError, printable, shown
from simulator.memory import require_bytes

MAX_NDIM = 32
"""Most dimensions a tensor may have (PyTorch allows 25)."""

BF16 = "bfloat16"
"""Marker dtype name for bfloat16 data (NumPy has no bfloat16; it is widened to float32)."""


NAME_LIMIT = 120
"""Most characters of a name from a file shown in a message (longer ones end in ...)."""
PATH_LIMIT = 1000
"""Most characters of a file's path shown in a message."""
MAX_TENSORS = 65_536
"""Most tensors one file may describe (optimizer state included). Published
checkpoints hold a few thousand per file; reading is linear in the count, and the cap
keeps a crafted file of millions of tiny tensors a quick refusal."""


def quoted(name: object, limit: int = NAME_LIMIT) -> str:
    """A name from a file, quoted and escaped for a message: ``'conv1.weight'``,
    ``'\\x1b[31mfc'`` (see :func:`simulator.errors.shown`; bounded work)."""
    return f"'{shown(name, limit)}'" if isinstance(name, str | bytes) else shown(name, limit)


def fail(path: str | Path, problem: str, tensor: object = None) -> CheckpointError:
    """A :class:`CheckpointError` naming the file and, where known, the tensor, as one
    printable line (names escaped and clipped, see :func:`quoted`)."""
    where = shown(str(path), PATH_LIMIT)
    if tensor is not None:
        where += f": tensor {quoted(tensor)}"
    return CheckpointError(f"{where}: {printable(problem)}")


def unique_name(name: str, seen: set[str], counts: dict[str, int]) -> str:
    """``name``, or the first free of ``name_``, ``name__``, ``name_3``, ``name_4``...;
    added to ``seen``. ``counts`` remembers where each name's numbering stands, so that
    thousands of equal names (long ones, clipped alike) cost linear time."""
    for candidate in (name, name + "_", name + "__"):
        if candidate not in seen:
            break
    else:
        k = counts.get(name, 3)
        while (candidate := f"{name}_{k}") in seen:
            k += 1
        counts[name] = k + 1
    seen.add(candidate)
    return candidate


def describe(obj: object, limit: int = 60) -> str:
    """A short, safe description of an object read from a file: its type and a clipped,
    escaped rendering. The work is bounded by ``limit`` whatever the object (a pickle of
    shared references whose full ``repr`` would be exponentially long costs nothing)."""
    return f"{type(obj).__name__} {_brief(obj, max(limit, 8))}"


def brief(obj: object, limit: int = 60) -> str:
    """A clipped, escaped rendering of a value from a file (:func:`describe` without
    the type), in bounded work: ``(2, 3)``, ``<integer of 4000 bits>``."""
    return _brief(obj, max(limit, 8))


def _brief(obj: object, budget: int, depth: int = 0) -> str:
    """At most about ``budget`` characters of ``obj`` (containers to depth 3)."""
    if isinstance(obj, str | bytes | bytearray):
        return f"'{shown(obj, max(budget - 2, 4))}'"
    if obj is None or isinstance(obj, bool | int | float | complex):
        return shown(obj, budget) if not isinstance(obj, complex) else shown(str(obj), budget)
    if isinstance(obj, list | tuple | set | frozenset | dict):
        left, right = "[]" if isinstance(obj, list) else "()" if isinstance(obj, tuple) else "{}"
        if len(obj) == 0:
            return left + right
        if depth >= 3 or budget < 6:
            return f"{left}...{right}"
        parts: list[str] = []
        used = 2
        items = iter(obj.items()) if isinstance(obj, dict) else iter(obj)
        for i, item in enumerate(items):
            if used >= budget or i >= budget:
                parts.append("...")
                break
            if isinstance(obj, dict):
                k, v = item
                text = _brief(k, budget - used, depth + 1) + ": "
                text += _brief(v, budget - used - len(text), depth + 1)
            else:
                text = _brief(item, budget - used, depth + 1)
            parts.append(text)
            used += len(text) + 2
        if len(parts) < len(obj) and parts[-1] != "...":
            parts.append("...")
        text = left + ", ".join(parts) + ("," if isinstance(obj, tuple) and len(obj) == 1 else "")
        text += right
        return text if len(text) <= budget + 8 else text[: budget + 4] + "..." + right
    return f"<{shown(type(obj).__name__, 40)}>"


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(path: str | Path, mode: int) -> CheckpointError:
    kind = next((what for test, what in _KINDS if test(mode)), "not a regular file")
    return fail(
        path,
        f"not a regular file but {kind}: give the checkpoint file itself "
        "(prunesim reads only regular files, so that a read cannot block or never end)",
    )


def check_regular(path: str | Path) -> None:
    """Raise :class:`CheckpointError` unless ``path`` is a regular file (symbolic links
    followed), before anything opens it: a FIFO would block, a device never end."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise fail(path, f"cannot open file ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(path, st.st_mode)


def open_regular(path: str | Path) -> BinaryIO:
    """``path`` opened for reading in binary, refusing anything but a regular file.

    The file is opened without blocking (a FIFO swapped in after a check cannot hang
    the open) and checked again on the open descriptor."""
    check_regular(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise fail(path, f"cannot open file ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


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
        (bfloat16 widened to float32) -- or, where the file repeats values through zero
        or overlapping strides (a broadcast), a read-only strided view of the values
        it stores, which takes no more memory than they do."""
        info = self.tensors.get(name)
        if info is None:
            raise fail(self.path, "no such tensor in the file", name)
        if info.dtype is None:
            raise fail(self.path, f"unsupported dtype {info.dtype_name}", name)
        try:
            return self._load(info)
        except PrunesimError:  # CheckpointError, ResourceError
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


HINT = "map the checkpoint onto a network with smaller layers, or raise the limit"


def read_exact(f: BinaryIO, offset: int, nbytes: int, path: str, name: str) -> np.ndarray:
    """``nbytes`` bytes at ``offset`` into a new uint8 array; short reads are an error.
    The memory is checked against the budget (:func:`simulator.memory.require_bytes`)
    first."""
    require_bytes(nbytes, f"tensor {quoted(name)} of {shown(str(path), PATH_LIMIT)}", HINT)
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


MAX_ZIP_ENTRIES = MAX_TENSORS + 64
"""Most members a zip-based checkpoint may have (one per tensor or storage, plus a
few): Python's zipfile parses the whole directory when it opens an archive."""


def check_zip_entries(f: BinaryIO, path: str | Path) -> None:
    """Refuse a zip archive whose directory lists more than :data:`MAX_ZIP_ENTRIES`
    members, from its end-of-directory record alone (read before the directory)."""
    size = file_size(f)
    f.seek(max(size - (1 << 16) - 22, 0))
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return  # not found: zipfile will say what is wrong
    count = int.from_bytes(tail[at + 10 : at + 12], "little")
    locator = tail.rfind(b"PK\x06\x07", 0, at)
    if count == 0xFFFF and locator >= 0 and locator + 20 <= len(tail):  # zip64
        f.seek(int.from_bytes(tail[locator + 8 : locator + 16], "little"))
        record = f.read(56)
        if record[:4] == b"PK\x06\x06" and len(record) == 56:
            count = int.from_bytes(record[32:40], "little")
    f.seek(0)
    if count > MAX_ZIP_ENTRIES:
        raise fail(
            path,
            f"zip archive of {count:,} members, more than the {MAX_ZIP_ENTRIES:,} accepted "
            "(a checkpoint holds one per tensor); refused",
        )


def file_size(f: BinaryIO) -> int:
    """Size of an open file in bytes."""
    pos = f.tell()
    f.seek(0, 2)
    size = f.tell()
    f.seek(pos)
    return size

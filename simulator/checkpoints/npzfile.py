"""NumPy ``.npz`` archives (``np.savez`` / ``np.savez_compressed``), never unpickled.

Each member ``NAME.npy`` is one tensor named NAME. Headers are read first (shape,
dtype, order) and checked against the member's size; object arrays, which only
pickle could restore, are listed and never loaded (``allow_pickle=False``).
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from simulator.checkpoints.source import (
    HINT,
    NAME_LIMIT,
    PATH_LIMIT,
    TensorInfo,
    TensorSource,
    check_zip_entries,
    fail,
    open_regular,
    quoted,
)
from simulator.errors import shown
from simulator.memory import require_bytes


class NpzSource(TensorSource):
    """Arrays of an ``.npz`` file; each ``load`` decompresses one member."""

    format = "npz"

    def __init__(self, path: str | Path):
        super().__init__(path)
        self._file = f = open_regular(path)
        try:
            check_zip_entries(f, self.path)
        except BaseException:
            f.close()
            raise
        try:
            self._zip = zipfile.ZipFile(f)
        except Exception as e:
            f.close()
            raise fail(self.path, f"not a readable zip archive ({type(e).__name__}: {e})") from None
        try:
            self._index()
        except BaseException:
            self.close()
            raise

    def _index(self) -> None:
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._fortran: dict[str, bool] = {}
        for entry in self._zip.infolist():
            if entry.is_dir():
                continue
            if not entry.filename.endswith(".npy"):
                self.other.append((shown(entry.filename, NAME_LIMIT), "not an .npy member"))
                continue
            name = entry.filename[:-4]
            try:
                with self._zip.open(entry) as f:
                    version = np.lib.format.read_magic(f)
                    if version not in ((1, 0), (2, 0), (3, 0)):
                        raise ValueError(f"unknown .npy version {version}")
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, fortran, dtype = read(f, max_header_size=10_000)
                    header_end = f.tell()
            except Exception as e:
                raise fail(self.path, f"bad .npy header ({type(e).__name__}: {e})", name) from None
            if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
                self.tensors[name] = TensorInfo(
                    name=name, shape=shape, dtype=None, dtype_name=f"{dtype} (not loaded)"
                )
                continue
            need = header_end + math.prod(shape) * dtype.itemsize
            if need > entry.file_size:
                raise fail(
                    self.path,
                    f"member holds {entry.file_size} bytes, header promises {need} "
                    f"(shape {shape}, {dtype})",
                    name,
                )
            self._members[name] = entry
            self._fortran[name] = bool(fortran)
            self.tensors[name] = TensorInfo(
                name=name, shape=shape, dtype=dtype, dtype_name=str(dtype)
            )

    def _load(self, info: TensorInfo) -> np.ndarray:
        require_bytes(  # a compressed member can inflate about a thousandfold
            math.prod(info.shape) * info.dtype.itemsize,
            f"tensor {quoted(info.name)} of {shown(self.path, PATH_LIMIT)}",
            HINT,
        )
        with self._zip.open(self._members[info.name]) as f:
            arr = np.lib.format.read_array(f, allow_pickle=False)
        if arr.shape != info.shape:
            raise fail(self.path, f"shape changed between reads: {arr.shape}", info.name)
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return np.ascontiguousarray(arr)

    def close(self) -> None:
        self._zip.close()
        self._file.close()

"""safetensors files, read without the ``safetensors`` package.

The format: an 8-byte little-endian header length N, N bytes of JSON
(``{"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
"__metadata__": {...}}``), then the tensors' bytes, offsets relative to the end of
the header. Every entry is checked (dtype, shape, offsets inside the data, size equal
to shape x item size) before anything is read.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from simulator.checkpoints.source import (
    BF16,
    MAX_TENSORS,
    TensorInfo,
    TensorSource,
    check_shape,
    describe,
    fail,
    file_size,
    open_regular,
    read_exact,
    to_native,
)
from simulator.errors import shown

DTYPES: dict[str, np.dtype | str] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": BF16,
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
"""safetensors dtype names -> NumPy dtypes (little-endian, as the format stores them)."""
MAX_HEADER_BYTES = 100_000_000
"""Largest JSON header accepted (the safetensors library's own limit)."""


def is_safetensors(head: bytes) -> bool:
    """Whether the first bytes look like a safetensors file."""
    return len(head) >= 9 and head[8:9] == b"{"


def _itemsize(dtype: np.dtype | str) -> int:
    return 2 if dtype == BF16 else np.dtype(dtype).itemsize


class SafetensorsSource(TensorSource):
    """Tensors of a safetensors file; each ``load`` reads one tensor's bytes.

    Tensors of dtypes NumPy cannot hold (float8 and smaller) are listed with
    ``dtype=None``; loading them is an error.
    """

    format = "safetensors"

    def __init__(self, path: str | Path):
        super().__init__(path)
        self._f: BinaryIO = open_regular(path)
        try:
            self._read_header()
        except BaseException:
            self._f.close()
            raise

    def _read_header(self) -> None:
        size = file_size(self._f)
        head = self._f.read(8)
        if len(head) < 8:
            raise fail(self.path, "file too short for a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise fail(
                self.path, f"safetensors header length {n} does not fit the file ({size} bytes)"
            )
        raw = self._f.read(n)
        # every entry has one "data_offsets" key, and the text cannot occur unescaped
        # inside a JSON string: this counts entries (an upper bound) without parsing
        count = raw.count(b'"data_offsets"')
        if count > MAX_TENSORS:
            raise fail(
                self.path,
                f"safetensors header lists {count:,} tensors, more than the {MAX_TENSORS:,} "
                "accepted (published checkpoints hold a few thousand per file); refused",
            )
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise fail(
                self.path, f"safetensors header is not valid JSON ({shown(str(e), 200)})"
            ) from None
        except ValueError as e:  # integers of thousands of digits
            raise fail(self.path, f"safetensors header is not usable ({shown(str(e))})") from None
        if not isinstance(header, dict):
            raise fail(self.path, "safetensors header must be a JSON object")
        if len(header) > MAX_TENSORS + 1:  # keys spelled with escapes evade the count
            raise fail(self.path, f"safetensors header lists {len(header):,} tensors; refused")
        data_start, data_size = 8 + n, size - 8 - n
        self._offsets = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
                raise fail(self.path, "entry needs dtype, shape and data_offsets", name)
            shape = check_shape(self.path, name, entry["shape"])
            dname = entry["dtype"]
            dtype = DTYPES.get(dname) if isinstance(dname, str) else None
            dname = shown(dname, 40) if isinstance(dname, str) else describe(dname)
            offsets = entry["data_offsets"]
            if not (
                isinstance(offsets, list)
                and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_size
            ):
                raise fail(
                    self.path,
                    f"data_offsets {describe(offsets)} outside the data ({data_size} bytes)",
                    name,
                )
            info = TensorInfo(name=name, shape=shape, dtype=dtype, dtype_name=str(dname))
            length = offsets[1] - offsets[0]
            if dtype is not None and length != info.numel * _itemsize(dtype):
                raise fail(
                    self.path,
                    f"{length} bytes of data for shape {shape} of {dname} "
                    f"({info.numel * _itemsize(dtype)} expected)",
                    name,
                )
            self.tensors[name] = info
            self._offsets[name] = data_start + offsets[0]

    def _load(self, info: TensorInfo) -> np.ndarray:
        nbytes = info.numel * _itemsize(info.dtype)
        raw = read_exact(self._f, self._offsets[info.name], nbytes, self.path, info.name)
        return to_native(raw, info.dtype, info.shape)

    def close(self) -> None:
        self._f.close()


def write_safetensors(
    path: str | Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> None:
    """Write NumPy arrays as a safetensors file (what ``safetensors.numpy.save_file``
    writes; float16/32/64, integers and bool)."""
    names = {v: k for k, v in DTYPES.items() if isinstance(v, np.dtype)}
    header: dict[str, object] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    arrays = []
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr)
        a = a.astype(a.dtype.newbyteorder("<")) if a.dtype.byteorder == ">" else a
        key = names.get(a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype)
        if key is None:
            raise fail(path, f"dtype {a.dtype} cannot be stored in safetensors", name)
        header[name] = {
            "dtype": key,
            "shape": list(a.shape),
            "data_offsets": [offset, offset + a.nbytes],
        }
        offset += a.nbytes
        arrays.append(a)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in arrays:
            f.write(a.tobytes())

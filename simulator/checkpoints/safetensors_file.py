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
    quoted,
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


INDEX_NAME = "model.safetensors.index.json"
"""The index Hugging Face writes beside a sharded checkpoint."""
MAX_INDEX_BYTES = 100_000_000
"""Largest index file accepted (a weight map of 65,536 long names fits in a few MB)."""
MAX_SHARDS = 10_000
"""Most shard files one index may name (published checkpoints: up to a few hundred)."""


def is_shard_index(path: Path) -> bool:
    """Whether ``path`` names a sharded checkpoint's index (``*.index.json``)."""
    return path.name.lower().endswith(".index.json")


class ShardedSafetensorsSource(TensorSource):
    """Tensors of a checkpoint split over several safetensors files in one folder,
    listed by its index (``model.safetensors.index.json``: ``{"metadata": {...},
    "weight_map": {tensor name: shard file name}}``, as Hugging Face writes it).

    Every shard's header is read and checked when the index is opened (to list the
    tensors); a tensor's bytes are read when it is loaded, from its shard, which is
    then kept open until a tensor of another shard is asked for: reading layer by
    layer in file order holds one shard open and one tensor in memory. A shard must be
    a plain file name in the index's folder; every tensor the map names must be in the
    shard it names, and no tensor may be in two shards.
    """

    format = "safetensors (sharded)"

    def __init__(self, path: str | Path):
        super().__init__(path)
        index = Path(path)
        with open_regular(index) as f:
            raw = f.read(MAX_INDEX_BYTES + 1)
        if len(raw) > MAX_INDEX_BYTES:
            raise fail(self.path, f"index larger than {MAX_INDEX_BYTES:,} bytes; refused")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as e:
            raise fail(self.path, f"index is not valid JSON ({shown(str(e), 200)})") from None
        wmap = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(wmap, dict) or not wmap:
            raise fail(self.path, 'expected a JSON object with a non-empty "weight_map"')
        if len(wmap) > MAX_TENSORS:
            raise fail(self.path, f"weight_map lists {len(wmap):,} tensors; refused")
        shards: dict[str, list[str]] = {}
        for name, shard in wmap.items():
            if (
                not isinstance(shard, str)
                or not shard
                or shard != Path(shard).name
                or shard in (".", "..")
            ):
                raise fail(
                    self.path,
                    f"shard {describe(shard)} is not a file name in the index's folder",
                    name,
                )
            shards.setdefault(shard, []).append(name)
        if len(shards) > MAX_SHARDS:
            raise fail(self.path, f"index names {len(shards):,} shards; refused")
        self._shards: dict[str, Path] = {}
        self._shard_of: dict[str, str] = {}
        self._open: tuple[str, SafetensorsSource] | None = None
        for shard, names in shards.items():
            with SafetensorsSource(index.parent / shard) as part:
                for name in names:
                    if name not in part.tensors:
                        raise fail(
                            part.path,
                            "the index maps this tensor here, but the shard has no such tensor",
                            name,
                        )
                for name, info in part.tensors.items():
                    if name in self._shard_of:
                        raise fail(
                            part.path, f"tensor also in shard {quoted(self._shard_of[name])}", name
                        )
                    self._shard_of[name] = shard
                    self.tensors[name] = info
                if len(self.tensors) > MAX_TENSORS:
                    raise fail(
                        self.path, f"the shards hold more than {MAX_TENSORS:,} tensors; refused"
                    )
            self._shards[shard] = index.parent / shard
        unmapped = [n for n in self.tensors if n not in wmap]
        if unmapped:
            self.warnings.append(
                f"{len(unmapped)} tensor(s) in the shards are not in the index's weight_map "
                f"(read anyway), e.g. {quoted(unmapped[0])}"
            )

    def _load(self, info: TensorInfo) -> np.ndarray:
        shard = self._shard_of[info.name]
        if self._open is None or self._open[0] != shard:
            self.close()
            self._open = (shard, SafetensorsSource(self._shards[shard]))
        return self._open[1]._load(self._open[1].tensors[info.name])

    def close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None


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

"""PyTorch ``.pt``/``.pth`` files, read without torch and without running pickled code.

Two layouts exist. The zip format (``torch.save`` since 1.6) is a zip archive
``<folder>/data.pkl`` + ``<folder>/data/<key>`` (one raw storage per key, stored
uncompressed) + ``<folder>/byteorder``. The legacy format
(``_use_new_zipfile_serialization=False``, and every file before 1.6) is a sequence
of pickles -- magic number, protocol version, system info, the object, the list of
storage keys -- followed by each storage as an 8-byte element count and raw bytes.

The pickles are first checked by :mod:`.picklescan`, then read by
:class:`~.unpickler.SafeUnpickler`, which resolves only an allow-list of
globals by name (tensor and parameter rebuilders, storage types, ``OrderedDict``,
``torch.Size``, dtypes, numeric NumPy scalars) to inert local stand-ins, and refuses
everything else -- ``os.system``, a pickled ``nn.Module``, TorchScript -- before
anything is called. Tensors become :class:`~.unpickler.TensorRef` objects: a storage, an offset,
sizes and strides, checked against the storage's length; the data is read only
when the tensor is loaded, and only the byte range the tensor covers.
"""

from __future__ import annotations

import io
import math
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from simulator.checkpoints.picklescan import scan_pickle, scan_whole
from simulator.checkpoints.source import (
    BF16,
    HINT,
    NAME_LIMIT,
    PATH_LIMIT,
    TensorInfo,
    TensorSource,
    check_zip_entries,
    describe,
    fail,
    file_size,
    open_regular,
    quoted,
    read_exact,
    to_native,
)
from simulator.checkpoints.unpickler import (
    Refused,
    SafeUnpickler,
    Storage,
    StorageType,
    TensorRef,
    check_tensor,
    is_int,
)
from simulator.errors import CheckpointError, shown
from simulator.memory import require_bytes

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_PICKLE_BYTES = 1 << 26
"""Largest pickle accepted, 64 MiB (it holds names and shapes, not data: a real
state_dict takes about 150 bytes per tensor)."""
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights")
"""Keys under which training checkpoints keep the state_dict, tried in this order."""


def _next_pickle(f: BinaryIO, size: int, path: str, what: str) -> io.BytesIO:
    """The bytes of the pickle that starts at the file's position (the file is left
    just past it), checked by :func:`scan_pickle`: read in growing chunks (the
    storages that follow the pickles are not read here), at most
    :data:`MAX_PICKLE_BYTES`."""
    start = f.tell()
    chunk = 1 << 16
    while True:
        f.seek(start)
        want = min(chunk, MAX_PICKLE_BYTES)
        data = f.read(want)
        end = scan_pickle(data, path, what)
        if end is not None:
            f.seek(start + end)
            return io.BytesIO(data[:end])
        if len(data) < want:
            raise fail(path, f"{what} is corrupt (the file ends before its STOP opcode)")
        if want >= MAX_PICKLE_BYTES:
            raise fail(path, f"{what}: a pickle over {MAX_PICKLE_BYTES:,} bytes; refused")
        chunk *= 4


def _safe_load(unpickler: SafeUnpickler, path: str, what: str) -> Any:
    try:
        return unpickler.load()
    except Refused as e:
        raise fail(path, f"{what}: {e}") from None
    except CheckpointError:
        raise
    except RecursionError:
        raise fail(path, f"{what}: nested too deeply") from None
    except MemoryError:
        raise fail(path, f"{what}: not enough memory to unpickle") from None
    except Exception as e:  # any failure of a corrupt pickle, typed as ours
        raise fail(path, f"{what} is corrupt ({type(e).__name__}: {e})") from None


# -- state_dict extraction -------------------------------------------------------------


def _extract(obj: Any, path: str) -> tuple[dict[str, TensorRef], list[tuple[str, str]]]:
    """The state_dict in an unpickled object: tensors by name, other entries skipped."""
    if isinstance(obj, TensorRef):
        raise fail(path, "the file holds a single tensor, not a state_dict")
    if not isinstance(obj, dict):
        raise fail(path, f"expected a state_dict (names -> tensors), found {describe(obj)}")
    skipped: list[tuple[str, str]] = []
    for _ in range(4):
        if any(isinstance(v, TensorRef) for v in obj.values()):
            break
        key = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if key is None:
            break
        skipped += [
            (_display(k), f"checkpoint entry beside {quoted(key)} ({type(v).__name__}), not read")
            for k, v in obj.items()
            if k != key
        ]
        obj = obj[key]
    tensors: dict[str, TensorRef] = {}
    for k, v in obj.items():
        name = k if isinstance(k, str) else describe(k)
        if isinstance(v, TensorRef):
            problem = v.problem or v.storage.problem
            if problem:
                raise fail(path, problem, name)
            tensors[name] = v
        else:
            skipped.append((_display(name), f"not a tensor ({shown(type(v).__name__, 40)})"))
    return tensors, skipped


def _display(name: object) -> str:
    """A name from the file as the reader shows it (escaped, clipped)."""
    return shown(name, NAME_LIMIT) if isinstance(name, str) else describe(name)


class _TorchSource(TensorSource):
    def _index(self, obj: Any, big_endian: bool) -> None:
        refs, self.other = _extract(obj, self.path)
        self._refs = refs
        for name, ref in refs.items():
            st = ref.storage
            dtype = st.dtype
            if isinstance(dtype, np.dtype) and big_endian and dtype.itemsize > 1:
                dtype = dtype.newbyteorder(">")
            self.tensors[name] = TensorInfo(
                name=name, shape=ref.size, dtype=dtype, dtype_name=st.dtype_name
            )

    def _storage_bytes(self, storage: Storage, first: int, count: int, name: str) -> np.ndarray:
        raise NotImplementedError

    def _load(self, info: TensorInfo) -> np.ndarray:
        ref = self._refs[info.name]
        st = ref.storage
        if ref.problem or check_tensor(st, ref.offset, ref.size, ref.stride):
            raise fail(self.path, ref.problem or "invalid tensor", info.name)
        lo, hi = ref.extent
        raw = self._storage_bytes(st, st.elem_offset + lo, hi - lo, info.name)
        flat = to_native(raw, info.dtype, (hi - lo,))
        numel = math.prod(ref.size)
        if numel == 0:
            return np.zeros(ref.size, dtype=flat.dtype)
        view = np.lib.stride_tricks.as_strided(
            flat, shape=ref.size, strides=[s * flat.itemsize for s in ref.stride], writeable=False
        )
        if numel > hi - lo:  # overlapping (e.g. zero) strides: a broadcast, kept as a view
            return view
        return np.array(view, copy=True)


class TorchZipSource(_TorchSource):
    """A ``torch.save`` zip archive (PyTorch >= 1.6)."""

    format = "torch-zip"

    def __init__(self, path: str | Path):
        super().__init__(path)
        self._f = open_regular(path)
        try:
            self._open()
        except CheckpointError:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise fail(self.path, f"corrupt zip archive ({type(e).__name__}: {e})") from None

    def _open(self) -> None:
        check_zip_entries(self._f, self.path)
        self._zip = zipfile.ZipFile(self._f)
        names = self._zip.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            if any(n.endswith(".npy") for n in names):
                raise fail(self.path, "a zip of .npy arrays: read it as an .npz file")
            raise fail(
                self.path, "zip archive without one <folder>/data.pkl: not a torch.save file"
            )
        self._prefix = pkl[0][: -len("data.pkl")]
        if any(n.startswith(self._prefix + "code/") for n in names):
            raise fail(self.path, "a TorchScript archive (torch.jit.save); save a state_dict")
        self._size = file_size(self._f)
        info = self._zip.getinfo(pkl[0])
        if info.file_size > MAX_PICKLE_BYTES:
            raise fail(self.path, f"data.pkl of {info.file_size} bytes is implausibly large")
        order = self._prefix + "byteorder"
        big = order in names and self._zip.read(order).strip() == b"big"
        self._storages: dict[str, Storage] = {}
        raw = self._zip.read(pkl[0])
        end = scan_whole(raw, self.path, "data.pkl")
        data = io.BytesIO(raw[:end])
        obj = _safe_load(SafeUnpickler(data, self.path, self._storage), self.path, "data.pkl")
        self._index(obj, big)

    def _storage(self, stype: StorageType, key: str, numel: int, _view: object) -> Storage:
        if key in self._storages:
            st = self._storages[key]
            if st.dtype_name != stype.name:
                st = Storage(key, stype, numel, f"storage {quoted(key)} used with two dtypes")
            return st
        problem = ""
        try:
            entry = self._zip.getinfo(f"{self._prefix}data/{key}")
        except KeyError:
            problem = f"storage {quoted(key)} is missing from the archive"
            entry = None
        if entry is not None and stype.dtype is not None:  # unknown dtypes are listed, not read
            need = numel * (2 if stype.dtype == BF16 else np.dtype(stype.dtype).itemsize)
            if entry.file_size < need:
                problem = (
                    f"storage {quoted(key)} holds {entry.file_size} bytes, "
                    f"{need} needed for {numel} elements"
                )
        st = self._storages[key] = Storage(key, stype, numel, problem)
        return st

    def _storage_bytes(self, storage: Storage, first: int, count: int, name: str) -> np.ndarray:
        item = 2 if storage.dtype == BF16 else np.dtype(storage.dtype).itemsize
        entry = self._zip.getinfo(f"{self._prefix}data/{storage.key}")
        start, nbytes = first * item, count * item
        if start + nbytes > entry.file_size:
            raise fail(self.path, f"tensor reaches past its storage {quoted(storage.key)}", name)
        if entry.compress_type == zipfile.ZIP_STORED:
            self._f.seek(entry.header_offset)
            head = self._f.read(30)
            if len(head) != 30 or head[:4] != b"PK\x03\x04":
                raise fail(
                    self.path, f"bad zip entry header of storage {quoted(storage.key)}", name
                )
            n, e = struct.unpack("<HH", head[26:30])
            begin = entry.header_offset + 30 + n + e
            if begin + entry.file_size > self._size:
                raise fail(self.path, f"storage {quoted(storage.key)} is truncated", name)
            return read_exact(self._f, begin + start, nbytes, self.path, name)
        require_bytes(nbytes, f"tensor {quoted(name)} of {shown(self.path, PATH_LIMIT)}", HINT)
        with self._zip.open(entry) as f:  # a re-compressed archive: decompress up to the end
            skip = start
            while skip > 0:  # in pieces: a large offset must not become one allocation
                piece = f.read(min(skip, 1 << 20))
                if not piece:
                    break
                skip -= len(piece)
            data = f.read(nbytes)
        if len(data) != nbytes:
            raise fail(self.path, f"storage {quoted(storage.key)} is truncated", name)
        return np.frombuffer(data, dtype=np.uint8)

    def close(self) -> None:
        if getattr(self, "_zip", None) is not None:
            self._zip.close()
        self._f.close()


class TorchLegacySource(_TorchSource):
    """A legacy (pre-1.6 layout) ``torch.save`` file."""

    format = "torch-legacy"

    def __init__(self, path: str | Path):
        super().__init__(path)
        self._f = open_regular(path)
        try:
            self._open()
        except BaseException:
            self._f.close()
            raise

    def _open(self) -> None:
        f, path = self._f, self.path
        self._size = file_size(f)
        if self._size and tarfile.is_tarfile(path):
            raise fail(path, "PyTorch's pre-0.4 tar format is not supported; re-save the file")
        size = self._size

        def load(what: str, storage_for=None) -> Any:
            data = _next_pickle(f, size, path, what)
            return _safe_load(SafeUnpickler(data, path, storage_for), path, what)

        magic = load("magic number")
        if magic != LEGACY_MAGIC:
            raise fail(path, "wrong magic number: not a PyTorch legacy checkpoint")
        proto = load("protocol version")
        if proto != LEGACY_PROTOCOL:
            raise fail(path, f"unsupported legacy protocol version {describe(proto)}")
        info = load("system info")
        if not isinstance(info, dict):
            raise fail(path, "system info is not a mapping")
        little = info.get("little_endian", True)
        self._roots: dict[str, Storage] = {}
        self._views: dict[tuple, Storage] = {}
        obj = load("the pickled object", self._storage)
        keys = load("the storage key list")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise fail(path, "storage key list is not a list of strings")
        self._offsets: dict[str, int] = {}
        pos = f.tell()
        for key in keys:
            st = self._roots.get(key)
            if st is None or st.dtype is None:
                raise fail(path, f"storage {quoted(key)} of unknown type in the key list")
            head = f.read(8) if f.seek(pos) == pos else b""
            if len(head) != 8:
                raise fail(path, f"file truncated at storage {quoted(key)}")
            (numel,) = struct.unpack("<q" if little else ">q", head)
            if numel != st.numel:
                raise fail(path, f"storage {quoted(key)} has {numel} elements, {st.numel} expected")
            item = 2 if st.dtype == BF16 else np.dtype(st.dtype).itemsize
            self._offsets[key] = pos + 8
            pos += 8 + numel * item
            if pos > self._size:
                raise fail(
                    path, f"file truncated: storage {quoted(key)} ends past the end of the file"
                )
        for key, st in self._roots.items():
            if key not in self._offsets and not st.problem:
                st.mark(f"storage {quoted(key)} has no data in the file")
        for st in self._views.values():
            if st.root.problem and not st.problem:
                st.mark(st.root.problem)
        self._index(obj, not little)

    def _storage(self, stype: StorageType, key: str, numel: int, view: object) -> Storage:
        root = self._roots.get(key)
        if root is None:
            root = self._roots[key] = Storage(key, stype, numel)
        elif root.dtype_name != stype.name or root.numel != numel:
            return Storage(key, stype, numel, f"storage {quoted(key)} described twice differently")
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3):
            raise fail(self.path, f"malformed storage view {describe(view)}")
        vkey, offset, size = view
        if not (
            isinstance(vkey, str) and is_int(offset) and is_int(size) and 0 <= min(offset, size)
        ):
            raise fail(self.path, f"malformed storage view {describe(view)}")
        st = self._views.get((key, vkey))
        if st is None:
            problem = ""
            if offset + size > numel:
                problem = f"storage view {quoted(vkey)} reaches past storage {quoted(key)}"
            st = Storage(key, stype, size, problem, elem_offset=offset, root=root)
            self._views[(key, vkey)] = st
        return st

    def _storage_bytes(self, storage: Storage, first: int, count: int, name: str) -> np.ndarray:
        item = 2 if storage.dtype == BF16 else np.dtype(storage.dtype).itemsize
        root = storage.root
        if root.problem or first + count > root.numel:
            raise fail(self.path, root.problem or "tensor reaches past its storage", name)
        return read_exact(
            self._f, self._offsets[root.key] + first * item, count * item, self.path, name
        )

    def close(self) -> None:
        self._f.close()

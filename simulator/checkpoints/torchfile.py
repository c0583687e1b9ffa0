"""PyTorch ``.pt``/``.pth`` files, read without torch and without running pickled code.

Two layouts exist. The zip format (``torch.save`` since 1.6) is a zip archive
``<folder>/data.pkl`` + ``<folder>/data/<key>`` (one raw storage per key, stored
uncompressed) + ``<folder>/byteorder``. The legacy format
(``_use_new_zipfile_serialization=False``, and every file before 1.6) is a sequence
of pickles -- magic number, protocol version, system info, the object, the list of
storage keys -- followed by each storage as an 8-byte element count and raw bytes.

The pickles are read by :class:`SafeUnpickler`, which resolves only an allow-list of
globals by name (tensor and parameter rebuilders, storage types, ``OrderedDict``,
``torch.Size``, dtypes, numeric NumPy scalars) to inert local stand-ins, and refuses
everything else -- ``os.system``, a pickled ``nn.Module``, TorchScript -- before
anything is called. Tensors become :class:`TensorRef` objects: a storage, an offset,
sizes and strides, checked against the storage's length; the data is read only
when the tensor is loaded, and only the byte range the tensor covers.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import re
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from simulator.checkpoints.picklescan import MAX_TENSORS, scan_pickle, scan_whole
from simulator.checkpoints.source import (
    BF16,
    MAX_NDIM,
    NAME_LIMIT,
    TensorInfo,
    TensorSource,
    brief,
    check_zip_entries,
    describe,
    fail,
    file_size,
    open_regular,
    quoted,
    read_exact,
    to_native,
)
from simulator.errors import CheckpointError, shown
from simulator.memory import require_bytes

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_PICKLE_BYTES = 1 << 26
"""Largest pickle accepted, 64 MiB (it holds names and shapes, not data: a real
state_dict takes about 150 bytes per tensor)."""
STORAGE_DTYPES: dict[str, np.dtype | str] = {
    "DoubleStorage": np.dtype("f8"),
    "FloatStorage": np.dtype("f4"),
    "HalfStorage": np.dtype("f2"),
    "BFloat16Storage": BF16,
    "LongStorage": np.dtype("i8"),
    "IntStorage": np.dtype("i4"),
    "ShortStorage": np.dtype("i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
    "ComplexFloatStorage": np.dtype("c8"),
    "ComplexDoubleStorage": np.dtype("c16"),
}
"""Typed storage classes of torch -> element dtype (native order; see ``byteorder``)."""
_STORAGE_NAME = re.compile(r"[A-Za-z0-9_]{1,40}Storage")
_TORCH_DTYPES = frozenset(
    "float64 float32 float16 bfloat16 int64 int32 int16 int8 uint8 bool complex64 complex128 "
    "double float half long int short cfloat cdouble".split()
)
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights")
"""Keys under which training checkpoints keep the state_dict, tried in this order."""


class _Refused(CheckpointError):
    """Raised inside the unpickler (without the file's name, added by the reader)."""


class _Frozen:
    """Base of every object the unpickler hands to a pickle: immutable (no attribute
    can be set, deleted or rebuilt by pickle's BUILD opcode) and made fresh for each
    file, so that nothing one file does can reach the next read."""

    __slots__ = ()

    def _init(self, **values: object) -> None:
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def __setstate__(self, state: object) -> None:
        raise _Refused(f"refused to set the state of a {type(self).__name__} from the pickle")

    def __setattr__(self, name: str, value: object) -> None:
        raise _Refused(f"{type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise _Refused(f"{type(self).__name__} is read-only")


class StorageType(_Frozen):
    """Stand-in for ``torch.FloatStorage`` and friends: only carries the dtype."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str):
        self._init(name=name, dtype=STORAGE_DTYPES.get(name))


class Storage(_Frozen):
    """A storage in the file: ``numel`` elements of ``dtype`` under ``key``, starting
    ``elem_offset`` elements into that key's data (legacy views; ``root`` is the whole
    storage). ``problem`` says why it cannot be read (reported with the name of the
    tensor that uses it); only the reader sets it, after the pickle is read."""

    __slots__ = ("dtype", "dtype_name", "elem_offset", "key", "numel", "problem", "root")

    def __init__(
        self,
        key: str,
        stype: StorageType,
        numel: int,
        problem: str = "",
        *,
        elem_offset: int = 0,
        root: Storage | None = None,
    ):
        self._init(
            key=key,
            dtype=stype.dtype,
            dtype_name=stype.name,
            numel=numel,
            elem_offset=elem_offset,
            problem=problem,
            root=self if root is None else root,
        )

    def mark(self, problem: str) -> None:
        """Record why the storage cannot be read (the reader's own bookkeeping)."""
        object.__setattr__(self, "problem", problem)


class TensorRef(_Frozen):
    """A tensor as the pickle describes it: storage, element offset, sizes, strides."""

    __slots__ = ("offset", "problem", "size", "storage", "stride")

    def __init__(self, storage: object, offset: object, size: object, stride: object):
        self._init(
            storage=storage,
            offset=offset,
            size=size,
            stride=stride,
            problem=_check_tensor(storage, offset, size, stride),
        )

    @property
    def extent(self) -> tuple[int, int]:
        """First and one-past-last element of the storage that the tensor touches."""
        if math.prod(self.size) == 0:
            return self.offset, self.offset
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        return self.offset, last + 1


class _Marker(_Frozen):
    """A name the pickle refers to (``torch.Tensor``, ``torch.float32``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self._init(name=name)

    def __repr__(self) -> str:
        return self.name


class _Global(_Frozen):
    """An allowed global as the pickle sees it: calls ``fn``; fresh for every file.
    ``count`` (shared by one file's rebuilders) counts the tensors built."""

    __slots__ = ("count", "fn", "key")

    def __init__(self, key: str, fn: Any, count: list[int] | None = None):
        self._init(key=key, fn=fn, count=count)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.count is not None:
            self.count[0] += 1
            if self.count[0] > MAX_TENSORS:
                raise _Refused(
                    f"more than {MAX_TENSORS:,} tensors in one file (published checkpoints "
                    "hold a few thousand); refused"
                )
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return self.key


_TENSOR_TYPE_NAMES = ("torch.Tensor", "torch.nn.parameter.Parameter")
_REBUILDERS = ("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_tensor(storage: object, offset: object, size: object, stride: object) -> str:
    """Why a tensor's description is impossible ('' if it is fine)."""
    if not isinstance(storage, Storage):
        return f"tensor data is not a storage but {describe(storage)}"
    if storage.problem:
        return storage.problem
    if not _is_int(offset) or offset < 0:
        return f"storage offset {describe(offset)} is not an integer >= 0"
    for what, v in (("size", size), ("stride", stride)):
        if not isinstance(v, tuple) or len(v) > MAX_NDIM or not all(_is_int(x) for x in v):
            return f"{what} {describe(v)} is not a tuple of integers"
    if len(size) != len(stride):
        return f"size {brief(size)} and stride {brief(stride)} differ in length"
    if any(x < 0 for x in size) or any(x < 0 for x in stride):
        return f"negative size or stride (size {brief(size)}, stride {brief(stride)})"
    if math.prod(size) == 0:
        if offset > storage.numel:
            return (
                f"storage offset {shown(offset)} beyond the storage "
                f"({shown(storage.numel)} elements)"
            )
        return ""
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= storage.numel:
        return (
            f"offset {shown(offset)}, size {brief(size)} and stride {brief(stride)} reach "
            f"element {shown(last)} of a storage of {shown(storage.numel)} elements "
            f"(key {quoted(storage.key)})"
        )
    return ""


# -- the allow-list ------------------------------------------------------------------


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored) -> TensorRef:
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride) -> TensorRef:
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_ignored) -> TensorRef:
    if not isinstance(data, TensorRef):
        raise _Refused(f"parameter data is {describe(data)}, not a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state) -> TensorRef:
    if not (isinstance(func, _Global) and func.key in _REBUILDERS) or not (
        isinstance(new_type, _Marker) and new_type.name in _TENSOR_TYPE_NAMES
    ):
        raise _Refused(f"refused tensor subclass rebuild {describe(func)} {describe(new_type)}")
    if not isinstance(args, tuple):
        raise _Refused("tensor rebuild arguments are not a tuple")
    return func(*args)


def _torch_size(dims=()) -> tuple:
    return tuple(dims)


def _torch_device(*args) -> str:
    return "device" + describe(args)


def _codecs_encode(text, encoding=None) -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes`` (latin-1 text)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("refused _codecs.encode call other than text -> latin-1 bytes")
    return text.encode("latin-1")


class NumpyDType(_Frozen):
    """A numeric NumPy dtype from a pickle (object dtypes are refused). Its byte order
    may be set once, by the BUILD that follows it in the pickle."""

    __slots__ = ("built", "dtype")

    def __init__(self, spec, align=False, copy=True):
        if not isinstance(spec, str) or len(spec) > 8:
            raise _Refused(f"refused numpy dtype {describe(spec)}")
        try:
            dt = np.dtype(spec)
        except TypeError:
            raise _Refused(f"refused numpy dtype {describe(spec)}") from None
        if dt.kind not in "biufc":
            raise _Refused(f"refused non-numeric numpy dtype {describe(spec)}")
        self._init(dtype=dt, built=False)

    def __setstate__(self, state: object) -> None:
        if self.built:
            raise _Refused("numpy dtype built twice")
        object.__setattr__(self, "built", True)
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            object.__setattr__(self, "dtype", self.dtype.newbyteorder(state[1]))


def _numpy_scalar(dtype, data=None) -> float | int | bool | complex:
    if not isinstance(dtype, NumpyDType) or not isinstance(data, bytes):
        raise _Refused("refused numpy scalar that is not a number")
    if len(data) != dtype.dtype.itemsize:
        raise _Refused("numpy scalar of the wrong length")
    return np.frombuffer(data, dtype.dtype)[0].item()


ALLOWED_GLOBALS: dict[str, Any] = {
    "collections.OrderedDict": collections.OrderedDict,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    "torch.Size": _torch_size,
    "torch.device": _torch_device,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "_codecs.encode": _codecs_encode,
    "numpy.dtype": NumpyDType,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "numpy._core.multiarray.scalar": _numpy_scalar,
}
"""Every callable global a checkpoint pickle may name (module.name -> what is called);
plus the names ``torch.Tensor``, ``torch.nn.parameter.Parameter``, ``torch.<X>Storage``
types and ``torch.<dtype>``. Anything else is refused. The pickle never receives these
objects themselves: each lookup gets a fresh, immutable :class:`_Global` that calls
them, so no file can alter what the next file is read with."""


def _refusal(path: str, module: str, name: str) -> CheckpointError:
    what = f"{module}.{name}"
    if module.startswith("__torch__") or module.startswith("torch.jit"):
        hint = "a TorchScript archive; save model.state_dict() instead"
    elif module.startswith("torch.nn.modules") or module == "__main__":
        hint = "the file pickles a whole model object (torch.save(model)); save model.state_dict()"
    else:
        hint = "only tensors, storages and plain containers are allowed"
    return fail(
        path,
        f"refused to load global {quoted(what)} from the pickle ({hint}); "
        "prunesim never runs code from a checkpoint",
    )


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`ALLOWED_GLOBALS`; storages come from
    ``storage_for`` (the persistent-id hook of the zip or legacy layout)."""

    def __init__(self, file: BinaryIO, path: str, storage_for=None):
        super().__init__(file, encoding="utf-8")
        self._path = path
        self._storage_for = storage_for
        self._tensors = [0]

    def find_class(self, module: str, name: str) -> Any:
        key = f"{module}.{name}"
        if key in ALLOWED_GLOBALS:
            fn = ALLOWED_GLOBALS[key]
            return _Global(key, fn, self._tensors if key in _REBUILDERS else None)
        if key in _TENSOR_TYPE_NAMES:
            return _Marker(key)
        if module == "torch" and _STORAGE_NAME.fullmatch(name):
            return StorageType(name)
        if module == "torch" and name in _TORCH_DTYPES:
            return _Marker(f"torch.{name}")
        raise _refusal(self._path, module, name)

    def persistent_load(self, pid: Any) -> Any:
        if self._storage_for is None:
            raise fail(self._path, "unexpected persistent id in the pickle")
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise fail(self._path, f"unsupported persistent id {describe(pid)}")
        stype, key, _location, numel = pid[1:5]
        if not isinstance(stype, StorageType) or not isinstance(key, str) or not _is_int(numel):
            raise fail(self._path, f"malformed storage reference {describe(pid)}")
        if numel < 0:
            raise fail(self._path, f"storage {quoted(key)}: negative element count {numel}")
        return self._storage_for(stype, key, numel, pid[5] if len(pid) > 5 else None)


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
    except _Refused as e:
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
        if ref.problem or _check_tensor(st, ref.offset, ref.size, ref.stride):
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
        require_bytes(nbytes, f"tensor {quoted(name)} of {shown(self.path, 1000)}")
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
            isinstance(vkey, str) and _is_int(offset) and _is_int(size) and 0 <= min(offset, size)
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

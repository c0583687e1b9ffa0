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
import pickletools
import re
import struct
import tarfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from simulator.checkpoints.source import (
    BF16,
    MAX_NDIM,
    TensorInfo,
    TensorSource,
    describe,
    fail,
    file_size,
    read_exact,
    to_native,
)
from simulator.errors import CheckpointError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_PICKLE_BYTES = 1 << 28
"""Largest ``data.pkl`` accepted (the pickle holds names and shapes, not data)."""

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
_REFUSED_OPS = frozenset({"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"})
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights")
"""Keys under which training checkpoints keep the state_dict, tried in this order."""


class _Inert:
    """Base of the stand-ins the unpickler builds: refuses pickle's BUILD opcode, so
    a crafted pickle cannot rewrite a checked object."""

    __slots__ = ()

    def __setstate__(self, state: object) -> None:
        raise CheckpointError(f"refused to set the state of {type(self).__name__} from the pickle")


class StorageType(_Inert):
    """Stand-in for ``torch.FloatStorage`` and friends: only carries the dtype."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES.get(name)


class Storage(_Inert):
    """A storage in the file: ``numel`` elements of ``dtype`` under ``key``, starting
    ``elem_offset`` elements into that key's data (legacy views). ``problem`` says
    why it cannot be read (reported with the name of the tensor that uses it)."""

    __slots__ = ("dtype", "dtype_name", "elem_offset", "key", "numel", "problem", "root")

    def __init__(self, key: str, stype: StorageType, numel: int, problem: str = ""):
        self.key = key
        self.dtype = stype.dtype
        self.dtype_name = stype.name
        self.numel = numel
        self.elem_offset = 0
        self.problem = problem
        self.root: Storage = self


class TensorRef(_Inert):
    """A tensor as the pickle describes it: storage, element offset, sizes, strides."""

    __slots__ = ("offset", "problem", "size", "storage", "stride")

    def __init__(self, storage: object, offset: object, size: object, stride: object):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.problem = _check_tensor(storage, offset, size, stride)

    @property
    def extent(self) -> tuple[int, int]:
        """First and one-past-last element of the storage that the tensor touches."""
        if math.prod(self.size) == 0:
            return self.offset, self.offset
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        return self.offset, last + 1


class _Marker(_Inert):
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


_TENSOR_TYPES = (_Marker("torch.Tensor"), _Marker("torch.nn.parameter.Parameter"))


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
        return f"size {size} and stride {stride} differ in length"
    if any(x < 0 for x in size) or any(x < 0 for x in stride):
        return f"negative size or stride (size {size}, stride {stride})"
    if math.prod(size) == 0:
        if offset > storage.numel:
            return f"storage offset {offset} beyond the storage ({storage.numel} elements)"
        return ""
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= storage.numel:
        return (
            f"offset {offset}, size {size} and stride {stride} reach element {last} of a "
            f"storage of {storage.numel} elements (key {storage.key!r})"
        )
    return ""


# -- the allow-list ------------------------------------------------------------------


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored) -> TensorRef:
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride) -> TensorRef:
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None) -> TensorRef:
    if not isinstance(data, TensorRef):
        raise CheckpointError(f"parameter data is {describe(data)}, not a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state) -> TensorRef:
    if func not in (_rebuild_tensor_v2, _rebuild_tensor) or new_type not in _TENSOR_TYPES:
        raise CheckpointError(f"refused tensor subclass rebuild {describe(func)} {new_type!r}")
    if not isinstance(args, tuple):
        raise CheckpointError("tensor rebuild arguments are not a tuple")
    return func(*args)


def _torch_size(dims=()) -> tuple:
    return tuple(dims)


def _torch_device(*args) -> str:
    return "device" + describe(args)


def _codecs_encode(text, encoding="utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes`` (latin-1 text)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError("refused _codecs.encode call other than text -> latin-1 bytes")
    return text.encode("latin-1")


class NumpyDType(_Inert):
    """A numeric NumPy dtype from a pickle (object dtypes are refused)."""

    __slots__ = ("dtype",)

    def __init__(self, spec, align=False, copy=True):
        if not isinstance(spec, str) or len(spec) > 8:
            raise CheckpointError(f"refused numpy dtype {describe(spec)}")
        dt = np.dtype(spec)
        if dt.kind not in "biufc":
            raise CheckpointError(f"refused non-numeric numpy dtype {spec!r}")
        self.dtype = dt

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.dtype = self.dtype.newbyteorder(state[1])


def _numpy_scalar(dtype, data=None) -> float | int | bool | complex:
    if not isinstance(dtype, NumpyDType) or not isinstance(data, bytes):
        raise CheckpointError("refused numpy scalar that is not a number")
    if len(data) != dtype.dtype.itemsize:
        raise CheckpointError("numpy scalar of the wrong length")
    return np.frombuffer(data, dtype.dtype)[0].item()


ALLOWED_GLOBALS: dict[str, Any] = {
    "collections.OrderedDict": collections.OrderedDict,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    "torch.Tensor": _TENSOR_TYPES[0],
    "torch.nn.parameter.Parameter": _TENSOR_TYPES[1],
    "torch.Size": _torch_size,
    "torch.device": _torch_device,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "_codecs.encode": _codecs_encode,
    "numpy.dtype": NumpyDType,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "numpy._core.multiarray.scalar": _numpy_scalar,
}
"""Every global a checkpoint pickle may name (module.name -> inert stand-in); plus
``torch.<X>Storage`` types and ``torch.<dtype>`` names. Anything else is refused."""


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
        f"refused to load global {what!r} from the pickle ({hint}); "
        "prunesim never runs code from a checkpoint",
    )


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`ALLOWED_GLOBALS`; storages come from
    ``storage_for`` (the persistent-id hook of the zip or legacy layout)."""

    def __init__(self, file: BinaryIO, path: str, storage_for=None):
        super().__init__(file, encoding="utf-8")
        self._path = path
        self._storage_for = storage_for

    def find_class(self, module: str, name: str) -> Any:
        key = f"{module}.{name}"
        if key in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[key]
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
            raise fail(self._path, f"storage {key!r}: negative element count {numel}")
        return self._storage_for(stype, key, numel, pid[5] if len(pid) > 5 else None)


class _Capped:
    """A read-only view of a file that never reads past ``end`` (a pickle's length
    fields cannot make a read allocate more than the file holds)."""

    def __init__(self, f: BinaryIO, end: int):
        self._f, self._end = f, end

    def read(self, n: int = -1) -> bytes:
        left = max(self._end - self._f.tell(), 0)
        return self._f.read(left if n is None or n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self._f.readline(max(self._end - self._f.tell(), 0))


def _scan(f: Any, path: str, what: str) -> None:
    """Walk a pickle's opcodes up to STOP without building anything (``f`` is left
    just past STOP), refusing the out-of-band buffer opcodes of protocol 5, which no
    checkpoint needs."""
    try:
        with warnings.catch_warnings():  # pickletools warns on odd escapes in STRING args
            warnings.simplefilter("ignore")
            for op, _arg, _pos in pickletools.genops(f):
                if op.name in _REFUSED_OPS:
                    raise fail(path, f"{what}: refused pickle opcode {op.name}")
    except CheckpointError:
        raise
    except Exception as e:
        raise fail(path, f"{what} is corrupt ({type(e).__name__}: {e})") from None


def _next_pickle(f: BinaryIO, size: int, path: str, what: str) -> io.BytesIO:
    """The bytes of the pickle that starts at the file's position (the file is left
    just past it), checked by :func:`_scan`."""
    start = f.tell()
    _scan(_Capped(f, size), path, what)
    end = f.tell()
    f.seek(start)
    return io.BytesIO(f.read(end - start))


def _safe_load(unpickler: SafeUnpickler, path: str, what: str) -> Any:
    try:
        return unpickler.load()
    except CheckpointError:
        raise
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
            (str(k), f"checkpoint entry beside {key!r} ({type(v).__name__}), not read")
            for k, v in obj.items()
            if k != key
        ]
        obj = obj[key]
    tensors: dict[str, TensorRef] = {}
    for k, v in obj.items():
        name = k if isinstance(k, str) else describe(k)
        if isinstance(v, TensorRef):
            problem = v.problem or _check_tensor(v.storage, v.offset, v.size, v.stride)
            if problem:
                raise fail(path, problem, name)
            tensors[name] = v
        else:
            skipped.append((name, f"not a tensor ({type(v).__name__})"))
    return tensors, skipped


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
        if math.prod(ref.size) == 0:
            return np.zeros(ref.size, dtype=flat.dtype)
        view = np.lib.stride_tricks.as_strided(
            flat, shape=ref.size, strides=[s * flat.itemsize for s in ref.stride], writeable=False
        )
        return np.array(view, copy=True)


class TorchZipSource(_TorchSource):
    """A ``torch.save`` zip archive (PyTorch >= 1.6)."""

    format = "torch-zip"

    def __init__(self, path: str | Path):
        super().__init__(path)
        self._f = open(path, "rb")
        try:
            self._open()
        except CheckpointError:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise fail(self.path, f"corrupt zip archive ({type(e).__name__}: {e})") from None

    def _open(self) -> None:
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
        data = io.BytesIO(self._zip.read(pkl[0]))
        _scan(data, self.path, "data.pkl")
        data.seek(0)
        obj = _safe_load(SafeUnpickler(data, self.path, self._storage), self.path, "data.pkl")
        self._index(obj, big)

    def _storage(self, stype: StorageType, key: str, numel: int, _view: object) -> Storage:
        if key in self._storages:
            st = self._storages[key]
            if st.dtype_name != stype.name:
                st = Storage(key, stype, numel, f"storage {key!r} used with two dtypes")
            return st
        st = Storage(key, stype, numel)
        name = f"{self._prefix}data/{key}"
        try:
            entry = self._zip.getinfo(name)
        except KeyError:
            st.problem = f"storage {key!r} is missing from the archive"
            entry = None
        if entry is not None and stype.dtype is not None:  # unknown dtypes are listed, not read
            need = numel * (2 if stype.dtype == BF16 else np.dtype(stype.dtype).itemsize)
            if entry.file_size < need:
                st.problem = (
                    f"storage {key!r} holds {entry.file_size} bytes, "
                    f"{need} needed for {numel} elements"
                )
        self._storages[key] = st
        return st

    def _storage_bytes(self, storage: Storage, first: int, count: int, name: str) -> np.ndarray:
        item = 2 if storage.dtype == BF16 else np.dtype(storage.dtype).itemsize
        entry = self._zip.getinfo(f"{self._prefix}data/{storage.key}")
        start, nbytes = first * item, count * item
        if start + nbytes > entry.file_size:
            raise fail(self.path, f"tensor reaches past its storage {storage.key!r}", name)
        if entry.compress_type == zipfile.ZIP_STORED:
            self._f.seek(entry.header_offset)
            head = self._f.read(30)
            if len(head) != 30 or head[:4] != b"PK\x03\x04":
                raise fail(self.path, f"bad zip entry header of storage {storage.key!r}", name)
            n, e = struct.unpack("<HH", head[26:30])
            begin = entry.header_offset + 30 + n + e
            if begin + entry.file_size > self._size:
                raise fail(self.path, f"storage {storage.key!r} is truncated", name)
            return read_exact(self._f, begin + start, nbytes, self.path, name)
        with self._zip.open(entry) as f:  # a re-compressed archive: decompress up to the end
            f.read(start)
            data = f.read(nbytes)
        if len(data) != nbytes:
            raise fail(self.path, f"storage {storage.key!r} is truncated", name)
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
        self._f = open(path, "rb")
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
                raise fail(path, f"storage {key!r} of unknown type in the key list")
            head = f.read(8) if f.seek(pos) == pos else b""
            if len(head) != 8:
                raise fail(path, f"file truncated at storage {key!r}")
            (numel,) = struct.unpack("<q" if little else ">q", head)
            if numel != st.numel:
                raise fail(path, f"storage {key!r} has {numel} elements, {st.numel} expected")
            item = 2 if st.dtype == BF16 else np.dtype(st.dtype).itemsize
            self._offsets[key] = pos + 8
            pos += 8 + numel * item
            if pos > self._size:
                raise fail(path, f"file truncated: storage {key!r} ends past the end of the file")
        for key, st in self._roots.items():
            if key not in self._offsets and not st.problem:
                st.problem = f"storage {key!r} has no data in the file"
        for st in self._views.values():
            if st.root.problem and not st.problem:
                st.problem = st.root.problem
        self._index(obj, not little)

    def _storage(self, stype: StorageType, key: str, numel: int, view: object) -> Storage:
        root = self._roots.get(key)
        if root is None:
            root = self._roots[key] = Storage(key, stype, numel)
        elif root.dtype_name != stype.name or root.numel != numel:
            return Storage(key, stype, numel, f"storage {key!r} described twice differently")
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3):
            raise fail(self.path, f"malformed storage view {describe(view)}")
        vkey, offset, size = view
        if not (_is_int(offset) and _is_int(size) and 0 <= offset and 0 <= size):
            raise fail(self.path, f"malformed storage view {describe(view)}")
        st = self._views.get((key, vkey))
        if st is None:
            st = self._views[(key, vkey)] = Storage(key, stype, size)
            st.elem_offset, st.root = offset, root
            if offset + size > numel:
                st.problem = f"storage view {vkey!r} reaches past storage {key!r}"
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

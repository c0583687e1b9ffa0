"""The restricted unpickler of PyTorch files: only the globals a state_dict needs
(tensor rebuilders, storage types, a few numpy and collections types), each replaced
by an immutable stand-in made fresh for every file; nothing a pickle names is ever
called or imported."""

from __future__ import annotations

import collections
import math
import pickle
import re
from typing import Any, BinaryIO

import numpy as np

from simulator.checkpoints.source import (
    BF16,
    MAX_NDIM,
    MAX_TENSORS,
    brief,
    describe,
    fail,
    quoted,
)
from simulator.errors import CheckpointError, shown

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


class Refused(CheckpointError):
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
        raise Refused(f"refused to set the state of a {type(self).__name__} from the pickle")

    def __setattr__(self, name: str, value: object) -> None:
        raise Refused(f"{type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise Refused(f"{type(self).__name__} is read-only")


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
            problem=check_tensor(storage, offset, size, stride),
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
                raise Refused(
                    f"more than {MAX_TENSORS:,} tensors in one file (published checkpoints "
                    "hold a few thousand); refused"
                )
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return self.key


_TENSOR_TYPE_NAMES = ("torch.Tensor", "torch.nn.parameter.Parameter")
_REBUILDERS = ("torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor")


def is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_tensor(storage: object, offset: object, size: object, stride: object) -> str:
    """Why a tensor's description is impossible ('' if it is fine)."""
    if not isinstance(storage, Storage):
        return f"tensor data is not a storage but {describe(storage)}"
    if storage.problem:
        return storage.problem
    if not is_int(offset) or offset < 0:
        return f"storage offset {describe(offset)} is not an integer >= 0"
    for what, v in (("size", size), ("stride", stride)):
        if not isinstance(v, tuple) or len(v) > MAX_NDIM or not all(is_int(x) for x in v):
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
        raise Refused(f"parameter data is {describe(data)}, not a tensor")
    return data


def _rebuild_from_type_v2(func, new_type, args, state) -> TensorRef:
    if not (isinstance(func, _Global) and func.key in _REBUILDERS) or not (
        isinstance(new_type, _Marker) and new_type.name in _TENSOR_TYPE_NAMES
    ):
        raise Refused(f"refused tensor subclass rebuild {describe(func)} {describe(new_type)}")
    if not isinstance(args, tuple):
        raise Refused("tensor rebuild arguments are not a tuple")
    return func(*args)


def _torch_size(dims=()) -> tuple:
    return tuple(dims)


def _torch_device(*args) -> str:
    return "device" + describe(args)


def _codecs_encode(text, encoding=None) -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes`` (latin-1 text)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise Refused("refused _codecs.encode call other than text -> latin-1 bytes")
    return text.encode("latin-1")


class NumpyDType(_Frozen):
    """A numeric NumPy dtype from a pickle (object dtypes are refused). Its byte order
    may be set once, by the BUILD that follows it in the pickle."""

    __slots__ = ("built", "dtype")

    def __init__(self, spec, align=False, copy=True):
        if not isinstance(spec, str) or len(spec) > 8:
            raise Refused(f"refused numpy dtype {describe(spec)}")
        try:
            dt = np.dtype(spec)
        except TypeError:
            raise Refused(f"refused numpy dtype {describe(spec)}") from None
        if dt.kind not in "biufc":
            raise Refused(f"refused non-numeric numpy dtype {describe(spec)}")
        self._init(dtype=dt, built=False)

    def __setstate__(self, state: object) -> None:
        if self.built:
            raise Refused("numpy dtype built twice")
        object.__setattr__(self, "built", True)
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            object.__setattr__(self, "dtype", self.dtype.newbyteorder(state[1]))


def _numpy_scalar(dtype, data=None) -> float | int | bool | complex:
    if not isinstance(dtype, NumpyDType) or not isinstance(data, bytes):
        raise Refused("refused numpy scalar that is not a number")
    if len(data) != dtype.dtype.itemsize:
        raise Refused("numpy scalar of the wrong length")
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
        if not isinstance(stype, StorageType) or not isinstance(key, str) or not is_int(numel):
            raise fail(self._path, f"malformed storage reference {describe(pid)}")
        if numel < 0:
            raise fail(self._path, f"storage {quoted(key)}: negative element count {numel}")
        return self._storage_for(stype, key, numel, pid[5] if len(pid) > 5 else None)

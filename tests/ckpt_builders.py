"""Hand-assembled PyTorch checkpoint files for the reader tests (no torch needed).

The pickles are written opcode by opcode, exactly as ``torch.save`` lays them out
(``GLOBAL torch._utils _rebuild_tensor_v2``, a ``BINPERSID`` storage reference, the
offset, size and stride tuples), so the tests can also write what torch never
would: offsets and strides outside the storage, missing storages, and globals such
as ``os.system``.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

STORAGE_OF = {
    np.dtype("f4"): "FloatStorage",
    np.dtype("f2"): "HalfStorage",
    np.dtype("f8"): "DoubleStorage",
    np.dtype("i8"): "LongStorage",
    np.dtype("?"): "BoolStorage",
    np.dtype("u1"): "ByteStorage",
}


def s_(text: str) -> bytes:
    b = text.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def i_(v: int) -> bytes:
    return b"\x8a" + bytes([8]) + struct.pack("<q", v)  # LONG1, 8 bytes


def t_(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def g_(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


@dataclass
class Tensor:
    """A tensor entry: storage key and type, element count, offset, size, stride."""

    key: str
    storage: str
    numel: int
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    view: tuple | None = None  # legacy view metadata (view_key, offset, size)


def tensor_pickle(t: Tensor, legacy: bool) -> bytes:
    pid = [s_("storage"), g_("torch", t.storage), s_(t.key), s_("cpu"), i_(t.numel)]
    if legacy:
        if t.view is None:
            pid.append(b"N")
        else:
            pid.append(t_([s_(t.view[0]), i_(t.view[1]), i_(t.view[2])]))
    args = [
        t_(pid) + b"Q",
        i_(t.offset),
        t_([i_(x) for x in t.size]),
        t_([i_(x) for x in t.stride]),
        b"\x89",
        g_("collections", "OrderedDict") + b")R",
    ]
    return g_("torch._utils", "_rebuild_tensor_v2") + t_(args) + b"R"


def dict_pickle(entries: dict[str, bytes], wrap: str | None = None) -> bytes:
    """A protocol-2 pickle of an OrderedDict name -> pickled value (optionally inside
    ``{wrap: ..., "epoch": 3}``)."""
    body = g_("collections", "OrderedDict") + b")R("
    body += b"".join(s_(k) + v for k, v in entries.items()) + b"u"
    if wrap:
        body = b"}(" + s_(wrap) + body + s_("epoch") + i_(3) + b"u"
    return b"\x80\x02" + body + b"."


@dataclass
class TorchFile:
    """Storages (key -> array) and tensors (name -> :class:`Tensor`) to write."""

    storages: dict[str, np.ndarray] = field(default_factory=dict)
    tensors: dict[str, Tensor] = field(default_factory=dict)

    def add(self, name: str, arr: np.ndarray) -> None:
        """A contiguous tensor with a storage of its own."""
        arr = np.ascontiguousarray(arr)
        key = str(len(self.storages))
        self.storages[key] = arr.ravel()
        strides = tuple(s // arr.itemsize for s in arr.strides)
        self.tensors[name] = Tensor(
            key, STORAGE_OF[arr.dtype], arr.size, 0, tuple(arr.shape), strides
        )

    def pickle(self, legacy: bool, wrap: str | None = None, extra: bytes = b"") -> bytes:
        entries = {n: tensor_pickle(t, legacy) for n, t in self.tensors.items()}
        data = dict_pickle(entries, wrap)
        return data[:-1] + extra + b"." if extra else data

    def write_zip(
        self,
        path: Path,
        *,
        wrap: str | None = None,
        pkl: bytes | None = None,
        byteorder: str = "little",
    ) -> Path:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", pkl if pkl is not None else self.pickle(False, wrap))
            z.writestr("archive/byteorder", byteorder)
            for key, arr in self.storages.items():
                a = arr.astype(arr.dtype.newbyteorder(">")) if byteorder == "big" else arr
                z.writestr(f"archive/data/{key}", a.tobytes())
            z.writestr("archive/version", "3\n")
        return path

    def write_legacy(
        self, path: Path, *, pkl: bytes | None = None, magic: int = 0x1950A86A20F9469CFC6C
    ) -> Path:
        out = io.BytesIO()
        for obj in (
            magic,
            1001,
            {
                "protocol_version": 1001,
                "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4},
            },
        ):
            pickle.dump(obj, out, protocol=2)
        out.write(pkl if pkl is not None else self.pickle(True))
        pickle.dump(list(self.storages), out, protocol=2)
        for arr in self.storages.values():
            out.write(struct.pack("<q", arr.size))
            out.write(arr.tobytes())
        path.write_bytes(out.getvalue())
        return path


def evil_pickle(command: str) -> bytes:
    """A pickle that calls ``os.system(command)`` when loaded by a plain unpickler."""
    return b"\x80\x02" + g_("os", "system") + t_([s_(command)]) + b"R."


def evil_state_dict(command: str) -> bytes:
    """A state_dict whose second entry is ``os.system(command)``."""
    ok = tensor_pickle(Tensor("0", "FloatStorage", 4, 0, (2, 2), (2, 1)), False)
    bad = g_("posix", "system") + t_([s_(command)]) + b"R"
    return dict_pickle({"fc.weight": ok, "boom": bad})

"""Write the hostile-input corpus for the checkpoint readers (``tests/hostile/checkpoints/``).

Run ``python tests/hostile/make_checkpoints.py`` from the repository root to
regenerate the committed files (each under 1 KB); the large cases (a torch file of
100,000 tensors, a safetensors header of 1,000,000 entries) and the special files
(FIFO, directory, device) are made at test time by :func:`make_large` and
:func:`make_special`. Every pickle here is written opcode by opcode (see
``tests/ckpt_builders.py``); none of them is ever loaded by a plain unpickler.

Families (the file name's prefix): ``nested_`` shared-reference pickles whose full
``repr`` is exponential in their size; ``memo_`` memo-index bombs; ``stride_``
zero-stride (broadcast) tensors that are gigabytes when materialised; ``names_``
names with escape codes and forged error lines; ``trunc_`` truncated or
inconsistent storages and headers; ``global_`` pickles naming ``os.system`` and
other globals; ``leak_`` pickles that try to alter the reader's own stand-ins.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, as pytest has it

from ckpt_builders import (
    Tensor,
    TorchFile,
    dict_pickle,
    g_,
    i_,
    s_,
    t_,
    tensor_pickle,
)

HERE = Path(__file__).resolve().parent / "checkpoints"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
EVIL = "\x1b[31mfc\nprunesim: error: forged"
"""A name that would colour the terminal and forge an error line if printed raw."""
MARKER = "/tmp/prunesim-hostile-ran"
"""File that a pickle's os.system call would create (the tests check it never appears)."""


def _zip(pkl: bytes, storages: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in [
            ("a/data.pkl", pkl),
            *((f"a/data/{k}", v) for k, v in (storages or {}).items()),
        ]:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def _legacy(obj_pkl: bytes, storages: dict[str, bytes] | None = None, proto: bytes | None = None):
    out = io.BytesIO()
    pickle.dump(LEGACY_MAGIC, out, protocol=2)
    if proto is not None:
        out.write(proto)
    else:
        pickle.dump(1001, out, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True}, out, protocol=2)
    out.write(obj_pkl)
    pickle.dump(list(storages or {}), out, protocol=2)
    for data in (storages or {}).values():
        out.write(struct.pack("<q", len(data) // 4))
        out.write(data)
    return out.getvalue()


def nested(levels: int, kind: bytes = b"l") -> bytes:
    """A protocol-2 pickle body: level i is a list (``l``) or tuple (``t``) holding
    level i-1 twice, so its full repr has 2**levels leaves (memo indices < 256)."""
    body = b"]q\x00" if kind == b"l" else b")q\x00"
    for i in range(1, levels + 1):
        body += b"(h" + bytes([i - 1]) + b"h" + bytes([i - 1]) + kind + b"q" + bytes([i])
    return body


def tensor_entry(size, stride, numel, storage="FloatStorage", key="0", offset=0, legacy=False):
    return tensor_pickle(Tensor(key, storage, numel, offset, tuple(size), tuple(stride)), legacy)


def corpus() -> dict[str, bytes]:
    """File name -> bytes of every committed case."""
    f: dict[str, bytes] = {}
    one = np.ones(1, np.float32).tobytes()
    # -- shared references: repr is 2**levels long
    f["nested_list.pt"] = _zip(b"\x80\x02" + nested(40) + b".")
    f["nested_tuple_key.pt"] = _zip(
        b"\x80\x02}(" + nested(40, b"t") + b"N" + b"u."  # {nested tuple: None}
    )
    f["nested_device.pt"] = _zip(b"\x80\x02" + g_("torch", "device") + b"(" + nested(40) + b"tR.")
    f["nested_protocol_legacy.pt"] = _legacy(b"", proto=b"\x80\x02" + nested(40) + b".")
    f["nested_stride.pt"] = _zip(
        dict_pickle(
            {
                "fc.weight": g_("torch._utils", "_rebuild_tensor_v2")
                + b"("
                + t_([s_("storage"), g_("torch", "FloatStorage"), s_("0"), s_("cpu"), i_(1)])
                + b"Q"
                + i_(0)
                + t_([i_(1)])
                + nested(40, b"t")
                + b"tR"
            }
        ),
        {"0": one},
    )
    # -- memo bombs: the C unpickler sizes its memo array by the largest index
    f["memo_long_binput.pt"] = b"\x80\x02Nr\x00\x00\x00\x08."  # LONG_BINPUT 2**27
    f["memo_put_text.pt"] = b"\x80\x02Np134217728\n."  # PUT 2**27 (protocol 0 form)
    f["memo_in_zip.pt"] = _zip(b"\x80\x02}r\x00\x00\x00\x10.")  # LONG_BINPUT 2**28
    f["memo_get_large.pt"] = b"\x80\x02Nr\xff\xff\xff\x7fj\xff\xff\xff\x7f."
    # -- zero strides: bytes in the file, gigabytes when materialised
    f["stride_zero.pt"] = _zip(
        dict_pickle({"fc.weight": tensor_entry((20000, 20000), (0, 0), 1)}), {"0": one}
    )
    f["stride_zero_conv.pt"] = _zip(
        dict_pickle({"conv.weight": tensor_entry((8192, 8192, 3, 3), (0, 0, 0, 0), 1)}),
        {"0": one},
    )
    rows = np.arange(64, dtype=np.float32) % 3  # a third of the rows are zero
    f["stride_rows.pt"] = _zip(
        dict_pickle({"fc.weight": tensor_entry((64, 1 << 22), (1, 0), 64)}), {"0": rows.tobytes()}
    )
    cols = (np.arange(128, dtype=np.float32) % 4 != 0).astype(np.float32)
    f["stride_cols.pt"] = _zip(
        dict_pickle({"fc.weight": tensor_entry((1 << 21, 128), (0, 1), 128)}),
        {"0": cols.tobytes()},
    )
    f["stride_zero_legacy.pt"] = _legacy(
        dict_pickle({"fc.weight": tensor_entry((20000, 20000), (0, 0), 1, legacy=True)}),
        {"0": one},
    )
    f["stride_zero_masked.pt"] = _zip(
        dict_pickle(
            {
                "fc.weight_orig": tensor_entry((20000, 20000), (0, 0), 1),
                "fc.weight_mask": tensor_entry((20000, 20000), (0, 0), 1),
            }
        ),
        {"0": one},
    )
    f["stride_zero_mask_mismatch.pt"] = _zip(  # mask strides differ: a copy is unavoidable
        dict_pickle(
            {
                "fc.weight_orig": tensor_entry((2, 1 << 28), (0, 0), 1),
                "fc.weight_mask": tensor_entry((2, 1 << 28), (1, 0), 2, "BoolStorage", "1"),
            }
        ),
        {"0": one, "1": b"\x01\x00"},
    )
    # -- names with escape codes and forged lines
    w = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    tf = TorchFile()
    tf.add(EVIL + ".weight", w)
    tf.add("ok.weight\x1b]0;title\x07", w)
    f["names_escape.pt"] = _zip(tf.pickle(False), {k: v.tobytes() for k, v in tf.storages.items()})
    f["names_escape.safetensors"] = _safetensors(
        {EVIL + ".weight": ("F32", [2, 3], 24), "x\x1b[2J": ("F32", [2], 8)}
    )
    f["names_bad_offsets.safetensors"] = _safetensors({EVIL: ("F32", [2, 3], 999)}, data=b"\0" * 24)
    f["names_bad_dtype.safetensors"] = _safetensors({"w": ("\x1b[31m" + "X" * 500, [2, 3], 24)})
    f["names_storage_key.pt"] = _zip(
        dict_pickle({"fc.weight": tensor_entry((2, 2), (2, 1), 4, key=EVIL)})
    )
    f["names_nonstr_key.pt"] = _zip(
        b"\x80\x02}(" + b"(" + s_(EVIL) + b"t" + tensor_entry((2, 2), (2, 1), 4) + b"u.",
        {"0": np.ones(4, np.float32).tobytes()},
    )
    f["names_global.pt"] = _zip(b"\x80\x02" + g_("os", EVIL.replace("\n", " ")) + b".")
    f["names_long.pt"] = _zip(
        dict_pickle({"n" * 500 + EVIL + ".weight": tensor_entry((2, 2), (2, 1), 4)}),
        {"0": np.ones(4, np.float32).tobytes()},
    )
    # -- truncated and inconsistent storages
    f["trunc_missing_storage.pt"] = _zip(
        dict_pickle({"fc.weight": tensor_entry((4, 4), (4, 1), 16)})
    )
    f["trunc_short_storage.pt"] = _zip(
        dict_pickle({"fc.weight": tensor_entry((4, 4), (4, 1), 16)}), {"0": one * 3}
    )
    f["trunc_offset_past_end.pt"] = _zip(
        dict_pickle({"fc.weight": tensor_entry((4, 4), (4, 1), 16, offset=2**62)}),
        {"0": one * 16},
    )
    f["trunc_stride_past_end.pt"] = _zip(
        dict_pickle({"fc.weight": tensor_entry((4, 4), (2**61, 1), 16)}), {"0": one * 16}
    )
    f["trunc_two_dtypes.pt"] = _zip(
        dict_pickle(
            {
                "a.weight": tensor_entry((2, 2), (2, 1), 4),
                "b.weight": tensor_entry((2, 2), (2, 1), 4, storage="DoubleStorage"),
            }
        ),
        {"0": one * 4},
    )
    f["trunc_legacy_cut.pt"] = _legacy(
        dict_pickle({"fc.weight": tensor_entry((4, 4), (4, 1), 16, legacy=True)}),
        {"0": one * 16},
    )[:-20]
    f["trunc_huge_numel.pt"] = _zip(
        dict_pickle({"fc.weight": tensor_entry((2**31, 2**31), (2**31, 1), 2**62)}), {"0": one}
    )
    f["trunc_pickle_cut.pt"] = _zip(
        dict_pickle({"fc.weight": tensor_entry((2, 2), (2, 1), 4)})[:-9]
    )
    f["trunc_header.safetensors"] = struct.pack("<Q", 2**40) + b'{"a": 1}'
    f["trunc_data.safetensors"] = _safetensors(
        {"w": ("F32", [64, 64], 64 * 64 * 4)}, data=b"\0" * 8
    )
    f["trunc_shape_digits.safetensors"] = _safetensors(
        {"w": ("F32", [int("9" * 400), 2], 8)}, data=b"\0" * 8
    )
    f["trunc_deep_json.safetensors"] = _raw_safetensors(b"[" * 500 + b"]" * 500)
    # -- globals: never resolved, never called
    cmd = f"touch {MARKER}"
    for name, (mod, fn) in {
        "os_system": ("os", "system"),
        "posix_system": ("posix", "system"),
        "builtins_eval": ("builtins", "eval"),
        "builtins_getattr": ("builtins", "getattr"),
        "subprocess_popen": ("subprocess", "Popen"),
        "builtins_import": ("builtins", "__import__"),
        "numpy_reconstruct": ("numpy.core.multiarray", "_reconstruct"),
        "torch_load": ("torch", "load"),
    }.items():
        call = b"\x80\x02" + g_(mod, fn) + t_([s_(cmd)]) + b"R."
        f[f"global_{name}.pt"] = _zip(call)
    f["global_legacy_os_system.pt"] = _legacy(
        b"\x80\x02" + g_("os", "system") + t_([s_(cmd)]) + b"R."
    )
    f["global_inst_opcode.pt"] = _zip(b"(S'" + cmd.encode() + b"'\nios\nsystem\n.")
    f["global_stack_global.pt"] = _zip(
        b"\x80\x04\x8c\x02os\x8c\x06system\x93" + t_([s_(cmd)]) + b"R."
    )
    f["global_in_state_dict.pt"] = _zip(
        dict_pickle(
            {
                "fc.weight": tensor_entry((2, 2), (2, 1), 4),
                "x": g_("os", "system") + t_([s_(cmd)]) + b"R",
            }
        ),
        {"0": one * 4},
    )
    f["global_next_buffer.pt"] = _zip(b"\x80\x05\x97.")
    # -- attempts to alter the reader's own stand-ins (state that would leak)
    for fn in (
        "_codecs encode",
        "torch Size",
        "torch._utils _rebuild_parameter",
        "numpy dtype",
        "collections OrderedDict",
        "torch Tensor",
        "torch FloatStorage",
        "torch float32",
    ):
        mod, name = fn.split()
        state = b"(N}(" + s_("__defaults__") + t_([s_("latin-1")]) + s_("x") + i_(1) + b"ut"
        f[f"leak_{mod}_{name}.pt"] = _zip(b"\x80\x02" + g_(mod, name) + state + b"b.")
    return f


def _raw_safetensors(header: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + data


def _safetensors(entries: dict[str, tuple[str, list, int]], data: bytes | None = None) -> bytes:
    header = {}
    for name, (dtype, shape, nbytes) in entries.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [0, nbytes]}
    text = json.dumps(header).encode()
    if data is None:
        data = b"\0" * max((n for _, _, n in entries.values()), default=0)
    return _raw_safetensors(text, data)


def make_large(out: Path) -> dict[str, Path]:
    """The tensor-count and header-size bombs (megabytes: made at test time)."""
    out.mkdir(parents=True, exist_ok=True)
    n = 100_000
    entries = b"".join(s_(f"l{i}.weight") + tensor_entry((2, 2), (2, 1), 4) for i in range(n))
    pkl = b"\x80\x02" + g_("collections", "OrderedDict") + b")R(" + entries + b"u."
    files = {"count_100k_2d.pt": out / "count_100k_2d.pt"}
    files["count_100k_2d.pt"].write_bytes(_zip(pkl, {"0": np.ones(4, np.float32).tobytes()}))
    parts = [b"{"]
    for i in range(1_000_000):
        parts.append(b'"t%d":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},' % i)
    parts.append(b'"__metadata__":{}}')
    header = b"".join(parts)
    files["count_1m.safetensors"] = out / "count_1m.safetensors"
    files["count_1m.safetensors"].write_bytes(_raw_safetensors(header, b"\0" * 4))
    files["zip_100k_members.npz"] = out / "zip_100k_members.npz"
    with zipfile.ZipFile(files["zip_100k_members.npz"], "w") as z:
        for i in range(100_000):
            z.writestr(zipfile.ZipInfo(f"t{i}.npy"), b"")
    files["header_100mb.safetensors"] = out / "header_100mb.safetensors"
    with open(files["header_100mb.safetensors"], "wb") as fh:  # sparse: no disk used
        fh.write(struct.pack("<Q", 99_000_000) + b"{")
        fh.truncate(8 + 99_000_000)
    return files


def make_special(out: Path) -> dict[str, Path]:
    """A FIFO, a directory and a device given as the checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    fifo = out / "fifo.pt"
    if not fifo.exists():
        os.mkfifo(fifo)
    folder = out / "folder.pt"
    folder.mkdir(exist_ok=True)
    return {"fifo": fifo, "directory": folder, "dev_zero": Path("/dev/zero")}


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for old in HERE.iterdir():
        old.unlink()
    for name, data in corpus().items():
        (HERE / name).write_bytes(data)
        assert len(data) < 1024, (name, len(data))
    print(f"wrote {len(list(HERE.iterdir()))} files to {HERE}")


if __name__ == "__main__":
    main()

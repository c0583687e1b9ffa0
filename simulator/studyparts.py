"""A study's finished parts on disk: lossless table files, written atomically, and a
manifest that a resumed study checks before it trusts them.

A part is one folder holding one ``TABLE.json`` per table and ``manifest.json``::

    {"schema": 1,
     "name": "lenet5",                      # the network's exact name
     "key": "3f2a...",                      # the configuration (the folder's name)
     "inputs": {"code": "<sha256>", "network": "<sha256>",
                "platform eie": "<sha256>", "checkpoint": "<sha256>"},
     "tables": {"verdict": {"file": "verdict.json", "rows": 3, "sha256": "<sha256>"},
                ...}}

Each table file is columnar JSON, ``{"schema": 1, "rows": N, "columns": [{"name":
..., "dtype": "float64", "values": [...]}, ...]}``: floats are written with
``repr`` (exact), NaN and infinity as ``NaN`` and ``Infinity``, strings as strings
(an empty string stays an empty string), so a table read back is equal to the one
written, dtype for dtype and value for value. Every file is written under a
temporary name and renamed into place; the manifest goes last, after the old one is
removed, so a part is either complete and verifiable or has no manifest.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.errors import ConfigError
from simulator.files import temporary_name

SCHEMA = 1
"""Version of the part format (table files and manifest); parts of another version
are recomputed."""

MANIFEST = "manifest.json"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's contents, read in chunks (any size)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


@functools.cache
def source_hash(skip: tuple[str, ...] = ()) -> str:
    """A SHA-256 of prunesim's own source files (each path under the package and its
    bytes), but those whose path starts with one of ``skip``: results made by other
    code are not reused."""
    root = Path(__file__).resolve().parent  # the simulator package
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if not rel.startswith(skip):
            h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


# --- tables ------------------------------------------------------------------------


def _plain(values: list) -> list:
    """Python scalars JSON can hold exactly (NumPy scalars in object columns)."""
    out = []
    for v in values:
        if isinstance(v, np.generic):
            v = v.item()
        if v is not None and not isinstance(v, str | bool | int | float):
            raise TypeError(f"cannot store a {type(v).__name__} in a study part")
        out.append(v)
    return out


def encode_table(frame: pd.DataFrame) -> bytes:
    """A table as columnar JSON that :func:`decode_table` turns back into an equal
    table (same columns, order, dtypes and values; the index is not kept)."""
    names = list(frame.columns)
    if len(set(names)) < len(names) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"study tables need unique text column names, got {names}")
    columns = []
    for name in names:
        s = frame[name]
        if isinstance(s.dtype, pd.StringDtype):
            dtype = str(s.dtype)
            values = [None if v is None or v is pd.NA or v != v else v for v in s.tolist()]
        elif s.dtype == object:
            dtype, values = "object", _plain(s.tolist())
        elif s.dtype.kind in "biuf":
            dtype, values = str(s.dtype), s.to_numpy().tolist()
        else:
            raise TypeError(f"cannot store column {name!r} of dtype {s.dtype} in a study part")
        columns.append({"name": name, "dtype": dtype, "values": values})
    doc = {"schema": SCHEMA, "rows": len(frame), "columns": columns}
    return json.dumps(doc, separators=(",", ":"), allow_nan=True).encode("ascii")


def decode_table(data: bytes) -> pd.DataFrame:
    """The table :func:`encode_table` wrote; ``ValueError`` if the bytes are not one."""
    try:
        doc = json.loads(data)
        if doc["schema"] != SCHEMA:
            raise ValueError(f"table schema {doc['schema']!r}, expected {SCHEMA}")
        rows = doc["rows"]
        series = {}
        for col in doc["columns"]:
            values = col["values"]
            if not isinstance(values, list) or len(values) != rows:
                raise ValueError(f"column {col['name']!r} does not have {rows} rows")
            dtype = col["dtype"]
            if dtype not in ("object", "str", "string") and np.dtype(dtype).kind not in "biuf":
                raise ValueError(f"unknown column type {dtype!r}")
            series[col["name"]] = pd.Series(values, dtype=dtype)
        frame = pd.DataFrame(series, index=pd.RangeIndex(rows))
        if len(frame.columns) != len(doc["columns"]):
            raise ValueError("repeated column names")
        return frame
    except (KeyError, TypeError, IndexError, RecursionError, AttributeError) as e:
        raise ValueError(f"not a study table ({type(e).__name__}: {e})") from None


# --- atomic files --------------------------------------------------------------------


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either its old contents or
    all of ``data``, never part of it."""
    tmp = temporary_name(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# --- parts ---------------------------------------------------------------------------


def write_part(
    folder: Path,
    tables: Mapping[str, pd.DataFrame],
    *,
    name: str,
    key: str,
    inputs: Mapping[str, str],
) -> None:
    """Write a part: the tables, then the manifest that vouches for them."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)
        entries = {}
        for table, frame in tables.items():
            data = encode_table(frame)
            write_atomic(folder / f"{table}.json", data)
            entries[table] = {
                "file": f"{table}.json",
                "rows": len(frame),
                "sha256": sha256_bytes(data),
            }
        manifest = {
            "schema": SCHEMA,
            "name": name,
            "key": key,
            "inputs": dict(sorted(inputs.items())),
            "tables": entries,
        }
        write_atomic(folder / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    except OSError as e:
        raise ConfigError(str(folder), f"cannot write study results ({e.strerror or e})") from None


def read_part(
    folder: Path,
    tables: Sequence[str],
    *,
    name: str,
    key: str,
    inputs: Mapping[str, str],
) -> tuple[dict[str, pd.DataFrame] | None, str | None]:
    """A part's tables if its manifest vouches for them and for the same inputs, else
    ``(None, why)``; ``why`` is None when there is no part at all."""
    manifest_path = folder / MANIFEST
    try:
        if not manifest_path.is_file():
            if folder.is_dir() and any(folder.glob("*.json")):
                return None, "its part has no manifest (interrupted while written, or removed)"
            return None, None
        manifest = json.loads(manifest_path.read_bytes())
        if not isinstance(manifest, dict):
            return None, "its part's manifest is not a manifest"
        if manifest.get("schema") != SCHEMA:
            return None, f"its part has format {manifest.get('schema')!r}, expected {SCHEMA}"
        if manifest.get("name") != name or manifest.get("key") != key:
            return None, "its part belongs to another network or configuration"
        old = manifest.get("inputs")
        if not isinstance(old, dict):
            return None, "its part's manifest lists no inputs"
        changed = sorted({*old, *inputs} - {k for k in inputs if old.get(k) == inputs[k]})
        if changed:
            return None, f"changed since its part was computed: {', '.join(changed)}"
        entries = manifest.get("tables")
        if not isinstance(entries, dict):
            return None, "its part's manifest lists no tables"
        out = {}
        for table in tables:
            entry = entries.get(table)
            if not isinstance(entry, dict):
                return None, f"its part's manifest lacks table {table}"
            path = folder / f"{table}.json"
            if not path.is_file():
                return None, f"{path.name} is missing"
            data = path.read_bytes()
            if sha256_bytes(data) != entry.get("sha256"):
                return None, f"{path.name} does not match its manifest (damaged or half-written)"
            frame = decode_table(data)
            if len(frame) != entry.get("rows"):
                return None, f"{path.name} has {len(frame)} rows, its manifest says {entry['rows']}"
            out[table] = frame
        return out, None
    except (OSError, ValueError) as e:
        return None, f"its part cannot be read ({e})"
